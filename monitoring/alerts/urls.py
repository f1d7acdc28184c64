from django.urls import path

from monitoring.alerts import api

urlpatterns = [
    path("rules", api.AlertRuleListApi.as_view(), name="alert-rule-list"),
    path("rules/<int:rule_id>", api.AlertRuleDetailApi.as_view(), name="alert-rule-detail"),
    path("channels", api.AlertChannelListApi.as_view(), name="alert-channel-list"),
    path("channels/<int:channel_id>", api.AlertChannelDetailApi.as_view(), name="alert-channel-detail"),
    path("channels/<int:channel_id>/test", api.AlertChannelTestApi.as_view(), name="alert-channel-test"),
    path("events", api.AlertEventListApi.as_view(), name="alert-event-list"),
]
