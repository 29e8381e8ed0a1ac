# Entry point of the patch series. See README.md.
PYTHON ?= python3
# Which series: unset or empty, the default one (upstream.pin, patches/);
# SERIES=stable-2026.1, the one in the folder stable-2026.1/.  Every tool
# reads it from the environment.
SERIES ?=
export SERIES
SERIES_TOOL := $(PYTHON) tools/series.py

.PHONY: help tree export status check wheel demo test bench docs rebase-check \
	mutate

help:
	@echo "make demo    build the fork and show it against a real RabbitMQ"
	@echo "make test    set up and run every check (what CI runs)"
	@echo "make tree    build/oslo.messaging from upstream.pin + patches/"
	@echo "make export  write the tree's commits back to patches/"
	@echo "make status  fail unless everything in the tree is exported"
	@echo "make check   lint every series (applies; Gerrit-ready messages)"
	@echo "             and compare the files both series add"
	@echo "make wheel   dist/oslo_messaging-<version>+fork...-py3-none-any.whl"
	@echo "             (PLAIN=1: the pinned version exactly, for upper-constraints)"
	@echo "make bench   the fork against pristine <pinned version>, side by side"
	@echo "make docs    admin guide and release notes (HTML in build/docs)"
	@echo "make mutate  mutation testing of the series' new code (long)"
	@echo "make rebase-check REF=<git ref> UPSTREAM_GIT=<clone>"
	@echo "             the series onto another upstream, one line a patch"
	@echo "             (REF=sdist:<version>: the package index's sdist)"
	@echo ""
	@echo "SERIES=<name> selects the series every target works on: unset, the"
	@echo "default one (upstream.pin, patches/, build/, dist/); a folder name,"
	@echo "e.g. SERIES=stable-2026.1 (stable-2026.1/upstream.pin and patches/,"
	@echo "build/stable-2026.1/, dist/stable-2026.1/).  make check and make test"
	@echo "without SERIES cover every series."

tree:
	@echo "make tree: building the tree from the pin and the series"
	@$(SERIES_TOOL) tree $(if $(FORCE),--force)

export:
	@echo "make export: writing upstream..HEAD of the tree to the series"
	@$(SERIES_TOOL) export

status:
	@$(SERIES_TOOL) status

check:
	@echo "make check: applying the series on the pristine sdist, linting, comparing"
	@$(SERIES_TOOL) check

wheel:
	@echo "make wheel: building the wheel from the tree"
	@$(SERIES_TOOL) wheel $(if $(PLAIN),--plain)

demo:
	@echo "make demo: wheel, fresh virtualenv, RabbitMQ round trip"
	@$(PYTHON) tools/demo.py

test:
	@echo "make test: every stage, from a fresh virtualenv"
	@$(PYTHON) tools/run_tests.py

bench:
	@echo "make bench: fork vs pristine upstream, printed side by side"
	@$(PYTHON) bench/run.py

rebase-check:
	@test -n "$(REF)" || { echo "make rebase-check: give REF=<git ref> (with UPSTREAM_GIT=<clone>) or REF=sdist:<version>"; exit 2; }
	@$(PYTHON) tools/rebase_check.py $(if $(UPSTREAM_GIT),--git $(UPSTREAM_GIT)) $(REF)

docs:
	@echo "make docs: admin guide and release notes from the tree"
	@$(PYTHON) tools/docs.py

mutate:
	@echo "make mutate: mutation testing of the new code with cosmic-ray"
	@$(PYTHON) tools/mutate.py
