"""The monitoring app: what operators see of the desk.

It owns the desk aggregation (figures cached in Redis, a minute history in PostgreSQL), the read endpoints for
the dashboard, accounts, analytics, system health and the audit trail, the operator page, the Server-Sent
Events stream, Prometheus gauges, the alert rules and their delivery (`alerts`) and the demo desk simulator
(`simulator`). It reads every other app and no app imports it.
"""
