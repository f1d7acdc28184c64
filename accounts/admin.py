from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from accounts.models import User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "email", "subscription_tier", "is_staff", "is_active", "date_joined")
    list_filter = ("subscription_tier", "is_staff", "is_active")
    search_fields = ("username", "email")
    fieldsets = (*DjangoUserAdmin.fieldsets, ("Subscription", {"fields": ("subscription_tier",)}))
    add_fieldsets = (*DjangoUserAdmin.add_fieldsets, ("Subscription", {"fields": ("email", "subscription_tier")}))
