from django.urls import include, path

from monitoring.api import HealthApi
from monitoring.api_accounts import AccountDetailApi, AccountListApi
from monitoring.api_desk import (
    AnalyticsCorrelationApi,
    AnalyticsRiskApi,
    DashboardOverviewApi,
    PortfolioHistoryApi,
    PortfolioMetricsApi,
)
from monitoring.api_system import AuditListApi, SystemHealthApi
from monitoring.stream import MetricsStreamApi

urlpatterns = [
    path("health", HealthApi.as_view(), name="health"),
    path("alerts/", include("monitoring.alerts.urls")),
    path("metrics/stream", MetricsStreamApi.as_view(), name="metrics-stream"),
    path("system/health", SystemHealthApi.as_view(), name="system-health"),
    path("dashboard/overview", DashboardOverviewApi.as_view(), name="dashboard-overview"),
    path("portfolio/metrics", PortfolioMetricsApi.as_view(), name="portfolio-metrics"),
    path("portfolio/history", PortfolioHistoryApi.as_view(), name="portfolio-history"),
    path("accounts", AccountListApi.as_view(), name="account-list"),
    path("accounts/<int:account_id>", AccountDetailApi.as_view(), name="account-detail"),
    path("analytics/correlation", AnalyticsCorrelationApi.as_view(), name="analytics-correlation"),
    path("analytics/risk", AnalyticsRiskApi.as_view(), name="analytics-risk"),
    path("audit", AuditListApi.as_view(), name="audit-list"),
]
