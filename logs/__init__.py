"""Structured logging for every process: one configuration (`config`), secret redaction, request ids, the
stdout and Redis sinks, Celery's log context, and GET /api/logs over the recent entries. Infrastructure: it
imports no app.
"""
