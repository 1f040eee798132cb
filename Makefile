# The entry points. `make run` and `make test` are all a new user needs on Debian 12 (as root):
# each installs the missing packages, configures a release build and compiles what changed.
BUILD ?= build
MESON_TEST = meson test -C $(BUILD) --print-errorlogs --num-processes 1

.PHONY: all deps build run test bench format check-format clean

all: build

deps:
	@./.ci/deps

$(BUILD)/build.ninja: | deps
	meson setup $(BUILD) --buildtype=release

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

# The main app: the greeter on 127.0.0.1:6142 (Ctrl-C stops it). Flags: make run ARGS="--help".
run: build
	./$(BUILD)/apps/greeter/weft-greeter $(ARGS)

# Every suite: the unit tests, then the stress suite.
test: build
	$(MESON_TEST) --suite unit
	$(MESON_TEST) --suite stress

# Benchmarks beside the peers in ../shared/anchors (see docs/benchmarks.md): the scheduler
# micro-benchmarks, then the greeter under weft-load.
bench: build
	./apps/bench/run-peers.sh ./$(BUILD)/apps/bench/weft-bench
	./apps/bench/greeter-peers.sh ./$(BUILD)

# Every tracked C++ file. An empty list (git failing, say on a checkout owned by another user)
# is an error, not a formatting check that passes without looking at anything.
list_sources = files=$$(git ls-files '*.cpp' '*.hpp') || exit 1; \
	if [ -z "$$files" ]; then echo "no C++ sources listed by git ls-files" >&2; exit 1; fi

format:
	@$(list_sources); clang-format -i $$files

check-format:
	@$(list_sources); clang-format --dry-run -Werror $$files && \
	  echo "clang-format: $$(echo $$files | wc -w) files clean"

clean:
	rm -rf $(BUILD) build-asan build-tsan
