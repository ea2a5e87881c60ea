from django.apps import AppConfig


class PanelConfig(AppConfig):
    name = "panel"
    verbose_name = "Corral panel"

    def ready(self):
        # Registers the schema extensions (authentication schemes, errors).
        from panel import openapi  # noqa: F401
