"""Users, and (with the data-model issue) credentials, permissions, trading instances and API tokens."""

from django.contrib.auth.models import AbstractUser
from django.db import models


class SubscriptionTier(models.TextChoices):
    FREE = "free", "Free"
    BASIC = "basic", "Basic"
    PRO = "pro", "Pro"
    ENTERPRISE = "enterprise", "Enterprise"


class User(AbstractUser):
    """A platform user (bot owner or operator). The tier seeds trading limits and API rate limits."""

    email = models.EmailField(unique=True)
    subscription_tier = models.CharField(
        max_length=16, choices=SubscriptionTier.choices, default=SubscriptionTier.FREE, db_index=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    REQUIRED_FIELDS = ["email"]

    class Meta(AbstractUser.Meta):
        constraints = [
            models.CheckConstraint(
                condition=models.Q(subscription_tier__in=SubscriptionTier.values),
                name="user_subscription_tier_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.username
