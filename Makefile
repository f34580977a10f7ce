# The two commands of the README. Both set up .venv and build the package first (only what
# changed; a second run takes seconds). See tools/setup_env.sh.
.PHONY: run test

run:
	@tools/setup_env.sh python -m auras_ros.demo

# Extra pytest arguments: make test ARGS="-k roundtrip -x"
test:
	@tools/setup_env.sh tools/run_tests.sh $(ARGS)
