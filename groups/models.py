from django.db import models

from panel.validators import validate_dns_label


class Group(models.Model):
    """A named collection of an account's machines, mapped to a VLAN."""

    account = models.ForeignKey(
        "accounts.Account", on_delete=models.CASCADE, related_name="groups"
    )
    name = models.CharField(max_length=63, validators=[validate_dns_label])
    vlan_num = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "name"], name="group_name_unique_in_account"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name}.{self.account.name}"
