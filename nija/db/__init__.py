"""The project's database backend (`nija.db.postgresql`): Django's PostgreSQL backend with a health check that
costs no round trip."""
