"""The operator commands of the runbook's 운영 점검, each runnable as `python -m conformance.operator.<name>`
(health, payload_guards, migration_rollback); scripts/check_*.py are the runbook's spellings of the same."""
