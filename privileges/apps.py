from django.apps import AppConfig


class PrivilegesConfig(AppConfig):
    name = "privileges"
