"""Chaos Toolkit interoperability: drills exported as Chaos Toolkit experiments (`python -m chaos export`), and
every drill run's journal written in Chaos Toolkit's journal format (chaostoolkit-journal.json).

- introspect.py: which factory of chaos.drills.probes / chaos.drills.actions built a drill's probe or fault.
- configuration.py: the experiment's `configuration` and `secrets`: environment variables, or a target's URLs.
- activities.py: HTTP probes and chaostoolkit-toxiproxy actions, in the experiment format.
- experiment.py: a drill → an experiment, or the reason it cannot be one (`NotExportable`).
- journal.py: a finished drill (`chaos.drills.result.DrillResult`) → a Chaos Toolkit journal.

docs/CHAOSTOOLKIT.md says what maps to what. Nothing here imports Chaos Toolkit: the experiments run in a
virtualenv of their own (.venv-ctk), where none of our code is importable.
"""
