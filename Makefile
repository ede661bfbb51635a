.PHONY: setup demo test lint
setup:
	scripts/setup.sh --dev
demo:
	scripts/demo.sh
test:
	scripts/test.sh
lint:
	.venv/bin/flowctl lint processes
