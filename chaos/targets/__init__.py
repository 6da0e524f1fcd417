"""Targets: what drills run against, described by a file (docs/DEPLOYMENT.md).

- spec.py: the target file (TOML) read and checked into a `TargetSpec`; credentials are variable names.
- catalog.py: the built-in throwaway targets (`local`, `docker`), target files found on disk, what each offers.
- deployment.py: `DeploymentTarget`, a running deployment (load balancer, replicas) driven through its drivers.
- docker_driver.py: the `docker` fault driver (Docker Engine API); balancer.py: the load balancer's view.
"""
