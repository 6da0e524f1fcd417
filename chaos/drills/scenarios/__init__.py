"""The drills by runbook scenario: db, redis, overload and release; `chaos.drills.catalog` lists them all."""
