"""Alert rules that reach people: rules over the aggregated figures, their per-scope states, the append-only
alert events, notification channels (signed webhooks, Apprise targets) and the delivery of every notification.

`engine` decides (plain values, no Django); `services` load, call it and write; `delivery` and `transport`
send; `api` and `admin` are the interfaces.
"""
