# Developer entry point. Everything here calls scripts/ so CI and humans run the same thing.
#   make test                 the full suite (what CI runs: scripts/test)
#   make test ROLE=docker     one role's molecule scenarios (ROLE=site for molecule/)
#   make test ROLE=docker SCENARIO=default
#   make lint / make unit     linters / pytest only
#   make bootstrap            virtualenv + Docker engine
.PHONY: test lint unit bootstrap platform-image
ROLE ?=
SCENARIO ?=

test:
	ROLE=$(ROLE) SCENARIO=$(SCENARIO) scripts/test

lint:
	SKIP_UNIT=1 SKIP_MOLECULE=1 scripts/test

unit:
	SKIP_LINT=1 SKIP_MOLECULE=1 scripts/test

bootstrap:
	scripts/bootstrap.sh --with-docker

platform-image:
	scripts/build-platform-image.sh

.PHONY: lab lab-down lab-status
lab:
	scripts/lab up

lab-down:
	scripts/lab down

lab-status:
	scripts/lab status
