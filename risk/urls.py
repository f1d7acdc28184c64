from django.urls import path

from risk import api, api_reads

urlpatterns = [
    path("risk/check-position", api.PositionCheckApi.as_view(), name="risk-check-position"),
    path("risk/halt", api.TradingHaltApi.as_view(), name="risk-halt"),
    path("risk/resume", api.TradingResumeApi.as_view(), name="risk-resume"),
    path("positions/<int:position_id>/fill", api.PositionFillApi.as_view(), name="position-fill"),
    path("positions/<int:position_id>/close", api.PositionCloseApi.as_view(), name="position-close"),
    path("positions/<int:position_id>/cancel", api.PositionCancelApi.as_view(), name="position-cancel"),
    path("positions/<int:position_id>/approve", api.PositionApproveApi.as_view(), name="position-approve"),
    path("positions/<int:position_id>/reject", api.PositionRejectApi.as_view(), name="position-reject"),
    path("accounts/<int:account_id>/metrics", api.AccountMetricsReportApi.as_view(), name="account-metrics-report"),
    path("accounts/<int:account_id>/equity/confirm", api.EquityHoldConfirmApi.as_view(), name="account-equity-confirm"),
    path("accounts/<int:account_id>/transfers", api.EquityTransferApi.as_view(), name="account-transfers"),
    # Reads (risk/api_reads.py)
    path("positions", api_reads.PositionListApi.as_view(), name="position-list"),
    path("positions/<int:position_id>", api_reads.PositionDetailApi.as_view(), name="position-detail"),
    path("risk/events", api_reads.RiskEventListApi.as_view(), name="risk-event-list"),
    path("risk/status", api_reads.RiskStatusApi.as_view(), name="risk-status"),
]
