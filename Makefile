# matriochka: stage and build families of container images. `make help` lists the targets.
#
# This Makefile is the user's interface: it builds the tool when its sources change, runs
# `matriochka stage`, then hands over to the generated build.mk in the staging root, where every
# image is a target. Copy it next to another project's flavors/ and templates/ and set MATRIOCHKA to an
# installed binary to use the tool there.

SHELL := /bin/bash
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules
# Values are data, never make or shell code: a variable given on make's command line is taken
# literally (make would expand a `$(shell …)` in it when it exports it to a recipe, even under
# `make -n`); the others are read with $(value …) or reach matriochka through the environment.
$(foreach v,$(.VARIABLES),$(if $(filter command line,$(origin $(v))),$(eval override $(v) := $$(value $(v)))$(eval export $(v))))

# Paths and names reach make and the shell as words: make cannot quote a blank in a target or
# prerequisite, nor in the arguments of its functions (`$(dir …)`, `$(wildcard …)` split at
# blanks), and a `$`, quote or `;` would be make or shell code. So the directories this Makefile
# works in and the values it puts on a command line are checked, and refused with one line when
# they hold anything but these characters; data of other shapes reaches matriochka through the
# environment.
_M_WORD_CHARS := a b c d e f g h i j k l m n o p q r s t u v w x y z \
	A B C D E F G H I J K L M N O P Q R S T U V W X Y Z 0 1 2 3 4 5 6 7 8 9 . _ + @ / -
_M_EMPTY :=
_M_BLANK := $(_M_EMPTY) $(_M_EMPTY)
_M_TAB := $(_M_EMPTY)	$(_M_EMPTY)
_M_COMMA := ,
define _M_NEWLINE


endef
# $(1) without the characters listed in $(2).
_m_strip = $(if $(2),$(call _m_strip,$(subst $(firstword $(2)),,$(1)),$(wordlist 2,$(words $(2)),$(2))),$(1))
# Not empty when $(1) is empty or holds a character other than those of $(_M_WORD_CHARS) and
# $(2): blanks, which make's word functions would drop, count as such a character (`!`).
_m_blanks_marked = $(subst $(_M_BLANK),!,$(subst $(_M_TAB),!,$(subst $(_M_NEWLINE),!,$(1))))
_m_not_word = $(call _m_strip,$(call _m_blanks_marked,$(1)),$(_M_WORD_CHARS) $(2))$(if $(1),,empty)
_M_WORD_RULE := use only letters, digits and `._+@/-`

ifneq ($(call _m_not_word,$(CURDIR)),)
$(error the working directory `$(CURDIR)` holds a blank or a character make or the shell would \
	read as code: $(_M_WORD_RULE) in the path of the project)
endif
# This file, for the targets that run make again on it (build.all, push.all, release). A blank
# in its path splits it into words here, so that the path names no file.
_M_MAKEFILE := $(abspath $(lastword $(MAKEFILE_LIST)))
ifneq ($(call _m_not_word,$(_M_MAKEFILE))$(if $(wildcard $(_M_MAKEFILE)),,missing),)
$(error the path of this Makefile holds a blank or a character make or the shell would read as \
	code: $(_M_WORD_RULE) in the directories that hold it)
endif
_M_HERE := $(dir $(_M_MAKEFILE))
_M_CHECKOUT_TOOL := $(if $(wildcard $(_M_HERE)Cargo.toml),$(_M_HERE)target/release/matriochka)
ifeq ($(origin MATRIOCHKA),undefined)
MATRIOCHKA := $(or $(_M_CHECKOUT_TOOL),matriochka)
endif
ifneq ($(call _m_not_word,$(value MATRIOCHKA)),)
$(error MATRIOCHKA `$(value MATRIOCHKA)` is not a plain path: $(_M_WORD_RULE))
endif
# The tool is rebuilt only when it is the checkout's own binary.
_M_TOOL := $(filter $(_M_CHECKOUT_TOOL),$(MATRIOCHKA))
ifneq ($(_M_CHECKOUT_TOOL),)
_M_TOOL_SOURCES := $(_M_HERE)Cargo.toml $(_M_HERE)Cargo.lock $(shell find $(_M_HERE)src -name '*.rs')
endif
# The image recipes of the generated fragments run it.
export MATRIOCHKA

ifeq ($(origin JOBS),undefined)
JOBS := $(shell nproc 2>/dev/null || echo 2)
endif
ifneq ($(call _m_strip,$(call _m_blanks_marked,$(value JOBS)),0 1 2 3 4 5 6 7 8 9)$(if $(value JOBS),,empty),)
$(error JOBS `$(value JOBS)` is not a number: set it to a count of parallel jobs)
endif
# Read by `matriochka modified` from the environment, never by the shell.
VS_BRANCH ?=
export VS_BRANCH
# docker when its daemon answers, else podman when installed.
# Detected once (a simple variable), not at each use.
ifeq ($(origin CONTAINER_ENGINE),undefined)
CONTAINER_ENGINE := $(shell if docker info >/dev/null 2>&1; then echo docker; \
	elif command -v podman >/dev/null 2>&1; then echo podman; fi)
endif
# A program and its options, split at blanks by matriochka and by the generated fragments'
# `$(shell …)`: blanks, `=`, `:` and `,` are allowed too.
ifneq ($(strip $(value CONTAINER_ENGINE)),)
ifneq ($(call _m_not_word,$(subst $(_M_BLANK),,$(value CONTAINER_ENGINE)),= : $(_M_COMMA)),)
$(error CONTAINER_ENGINE `$(value CONTAINER_ENGINE)` is not a program and its options: use only \
	letters, digits, blanks and `._+@/=:,-`)
endif
endif
export CONTAINER_ENGINE

# The project root, as matriochka finds it: the nearest directory from here upwards that holds
# flavors/matriochka.toml. The generated fragments run there.
_m_root = $(if $(wildcard $(1)/flavors/matriochka.toml),$(1),$(if $(filter-out /,$(1)),$(call _m_root,$(patsubst %/,%,$(dir $(1)))),$(CURDIR)))
_M_ROOT := $(call _m_root,$(CURDIR))
# The staging root, where `matriochka stage` writes build.mk: `layout.staging_root` of the
# project's flavors/matriochka.toml, else `staging`. matriochka prints it where it has
# `show staging-root`; else (and before the tool is built) it is read from the file: the
# `staging_root = "…"` (or '…') line of its `[layout]` table, or a top-level
# `layout.staging_root = …` line. Whatever is read is checked as matriochka checks it.
_M_STAGING_ROOT_AWK := /^[ \t]*\[/ { t = $$0; gsub(/[ \t]/, "", t); sub(/\].*/, "]", t); next }; \
	{ v = $$0 }; (t == "[layout]" && sub(/^[ \t]*staging_root[ \t]*=[ \t]*/, "", v)) \
	|| (t == "" && sub(/^[ \t]*layout[ \t]*[.][ \t]*staging_root[ \t]*=[ \t]*/, "", v)) { \
	q = substr(v, 1, 1); if (q != "\"" && q != "\047") exit; v = substr(v, 2); \
	if (i = index(v, q)) print substr(v, 1, i - 1); exit }
_M_STAGING_ROOT := $(or $(shell $(MATRIOCHKA) show staging-root 2>/dev/null),$(if \
	$(wildcard $(_M_ROOT)/flavors/matriochka.toml),$(shell awk '$(_M_STAGING_ROOT_AWK)' \
	$(_M_ROOT)/flavors/matriochka.toml)),staging)
ifneq ($(call _m_not_word,$(patsubst -%,!,$(_M_STAGING_ROOT)),=),)
$(error `layout.staging_root` `$(_M_STAGING_ROOT)` is not a plain relative path: use only letters, \
	digits and `._+@/=-`, not a `-` first)
endif
_M_SUB = $(MAKE) --no-print-directory $(if $(filter-out $(CURDIR),$(_M_ROOT)),-C $(_M_ROOT) )-f $(_M_STAGING_ROOT)/build.mk
# The build report (README, "The build report"): one run id per top-level make, inherited by the
# makes it starts; each image action records an entry under it, and the last line of the build,
# push, manifest and release recipes writes staging/report.json even when the run failed, then
# exits with the run's status. Within release, only release itself finishes the run, and its makes
# get the id on their command line. An id from the environment is not taken: a make started by
# another run's recipe (a test suite, a user's own Makefile) is a run of its own.
ifneq ($(origin MATRIOCHKA_RUN),command line)
MATRIOCHKA_RUN := $(shell echo "$$(date -u +%Y%m%dT%H%M%SZ)-$$$$")
endif
export MATRIOCHKA_RUN
_m_finish = $(if $(value _M_IN_RELEASE),exit,$(MATRIOCHKA) report --finish $(1)$(if $(findstring n,$(firstword -$(MAKEFLAGS))), --dry-run) --status)
_M_NEED_ENGINE = $(if $(CONTAINER_ENGINE),,$(error no container engine: install docker or podman, \
	or run `make stage` to stage without building))

.PHONY: help stage build build.parallel build.all push push.parallel push.all \
	clean clean.nones clean.all clean.nuke lint test.staging test test.e2e test.ceph-stub bench show.flavors flavors.modified
.PHONY: test.e2e.podman test.e2e.docker
.PHONY: manifest release check.arches check.push test.release
.PHONY: test.images test.images.podman test.images.docker prune install

ifneq ($(_M_CHECKOUT_TOOL),)
# Sources are never made: no implicit rule search (`src/commands/clean.rs` would match `clean.%`).
$(_M_TOOL_SOURCES): ;
$(_M_CHECKOUT_TOOL): $(_M_TOOL_SOURCES)
	@$(if $(wildcard $(_M_CHECKOUT_TOOL)),,echo 'building matriochka (first run, a few minutes)')
	cd $(_M_HERE) && cargo build --release --locked
	@touch $@
endif

help: ## Show this help
	@printf 'Usage: make TARGET [FLAVORS="rel,arch,os,version,registry,repo,tag ..."] [OPTION=value ...]\n'
	@awk 'BEGIN { FS = ":.*## " } /^[a-z0-9.-]+:.*## / { printf "  %-18s %s\n", $$1, $$2 }' \
		$(_M_MAKEFILE)
	@printf '  %-18s %s\n' 'build.<id>.<image>' 'Stage the flavor of that id, then build one image (push., clean. too)' \
		'build.<id>' 'Stage the flavor of that id, then build its images'
	@printf '%s\n' 'Options (make variables or environment):' \
	'  FLAVORS            flavors to stage and build (default: `matriochka show default`)' \
	'  TAG_REGISTRY       registry/namespace prepended to image tags (default: ceph), or REGISTRY' \
	'  RELEASE            release part of the tags (default: the git branch)' \
	'  <IMAGE>_TAG        full tag of one image, e.g. DAEMON_BASE_TAG=daemon-base:v1' \
	'  IMAGES             build only these images of each flavor (with their parents)' \
	'  CONTAINER_ENGINE   docker or podman (default: docker when its daemon answers, else podman)' \
	'  BUILD_ARGS         extra arguments to every build, e.g. "--isolation chroot"' \
	'  PUSH_ARGS          extra arguments to every push, e.g. --tls-verify=false' \
	'  ARCHES             build.all/push.all: only the flavors of these arches, e.g. aarch64' \
	'  PULL=0             never pull base images (offline); PULL=1: always; default: when missing' \
	'  FORCE=1            rebuild images even when up to date' \
	'  REUSE=1            pull images the registry holds by content id instead of building them' \
	'  JOBS               parallel jobs of the .parallel targets (default: CPU count)' \
	'  PUSH_RETRIES       retries of a failed push, with growing back-off (default: 3)' \
	'  MATRIOCHKA         the matriochka binary (default: built from this checkout)' \
	'  VS_BRANCH, FETCH=1 branch that flavors.modified compares with, and fetch it first' \
	'  BAKE_ARGS          arguments to `docker buildx bake`, split on blanks, e.g. --push' \
	'  BAKE_CACHE         registry repository of the bake layer cache (a tag per target)' \
	'  BAKE_MERGE_ARCHES=1 bake one target per image and manifest group, its arches as platforms' \
	'  SQUASH=1           merge the layers each build adds into one (podman; docker: experimental)' \
	'  PRUNE_HOURS, PRUNE_KEEP  prune: age in hours (48) and most recent images kept (24)' \
	'  PRUNE_CURRENT=1, PRUNE_DRY=1  prune the current flavors too; only list what would go' \
	'  HEADER, FOOTER     files of lines added after the FROM of outside bases / to every Dockerfile'

stage: $(_M_TOOL) ## Stage the flavors' build contexts (no engine needed)
	+$(MATRIOCHKA) stage

build: stage check.arches ## Stage, then build the flavors' images in dependency order
	$(_M_NEED_ENGINE)
	+$(_M_SUB) build; $(call _m_finish,build) $$?

build.parallel: stage check.arches ## Like build, with JOBS parallel builds and per-image output
	$(_M_NEED_ENGINE)
	+$(_M_SUB) --jobs $(JOBS) --output-sync=recurse build; $(call _m_finish,build) $$?

build.all: $(_M_TOOL) ## Build every buildable flavor, in parallel
	+flavors="$$($(MATRIOCHKA) show flavors $(if $(value ARCHES),--arch "$$ARCHES"))" && $(MAKE) --no-print-directory -f $(_M_MAKEFILE) build.parallel FLAVORS="$$flavors"

push: stage check.push ## Build, then push the flavors' images once every build succeeded
	$(_M_NEED_ENGINE)
	+$(_M_SUB) push; $(call _m_finish,push) $$?

push.parallel: stage check.push ## Like push, with JOBS parallel builds and pushes
	$(_M_NEED_ENGINE)
	+$(_M_SUB) --jobs $(JOBS) --output-sync=recurse push; $(call _m_finish,push) $$?

push.all: $(_M_TOOL) ## Build and push every buildable flavor, in parallel
	+flavors="$$($(MATRIOCHKA) show flavors $(if $(value ARCHES),--arch "$$ARCHES"))" && $(MAKE) --no-print-directory -f $(_M_MAKEFILE) push.parallel FLAVORS="$$flavors"

# build.<id>.<image>, push.<id>.<image>, clean.<id>.<image> and build.<id>…: stage the one flavor
# the target names (its id among FLAVORS, the default and the buildable flavors), then run the
# target of the generated fragments. The target name reaches the shell as data (the environment);
# `stage --target` accepts only a target that names a staged flavor's id and image.
build.% push.% clean.%: export _M_TARGET = $@
_M_ONE_STAGE = $(MATRIOCHKA) stage --target "$$_M_TARGET"
_M_ONE_MAKE = $(_M_SUB) "$$_M_TARGET"
_M_ONE = $(_M_ONE_STAGE) && $(_M_ONE_MAKE)
# A per-image target ends with the report of what it did, as the aggregate ones do (a target that
# stages nothing reports nothing).
build.%: $(_M_TOOL)
	$(_M_NEED_ENGINE)
	+$(_M_ONE_STAGE) && { $(_M_ONE_MAKE); MATRIOCHKA_TARGET="$$_M_TARGET" $(call _m_finish,build) $$?; }
push.%: $(_M_TOOL)
	$(_M_NEED_ENGINE)
	+$(_M_ONE_STAGE) && { $(_M_ONE_MAKE); MATRIOCHKA_TARGET="$$_M_TARGET" $(call _m_finish,push) $$?; }
clean.%: $(_M_TOOL)
	$(_M_NEED_ENGINE)
	+$(_M_ONE)

check.arches: $(_M_TOOL) ## Fail when this host can neither run nor emulate a flavor's arch
	@$(MATRIOCHKA) check-arches

# Before a push: check.arches, and no test flavor (`flavors.test` is never pushed).
check.push: $(_M_TOOL)
	@$(MATRIOCHKA) check-arches --push

manifest: $(_M_TOOL) ## Join the pushed per-arch images of the flavors into manifest lists
	$(_M_NEED_ENGINE)
	$(MATRIOCHKA) manifest; $(call _m_finish,manifest) $$?

release: ## Push the flavors' images, then their manifest lists
	+_M_IN_RELEASE=1 $(MAKE) --no-print-directory -f $(_M_MAKEFILE) push MATRIOCHKA_RUN="$$MATRIOCHKA_RUN" \
		&& _M_IN_RELEASE=1 $(MAKE) --no-print-directory -f $(_M_MAKEFILE) manifest MATRIOCHKA_RUN="$$MATRIOCHKA_RUN"; \
		$(call _m_finish,release) $$?

clean: stage ## Remove the flavors' images (only those labelled by matriochka) and staging dirs
	+$(_M_SUB) clean

clean.nones: ## Remove dangling images left by matriochka builds
	$(_M_NEED_ENGINE)
	set -f; $$CONTAINER_ENGINE image prune --force --filter label=io.matriochka.flavor

clean.all: $(_M_TOOL) ## Remove all staging dirs and every matriochka image tagged in TAG_REGISTRY
	$(_M_NEED_ENGINE)
	$(MATRIOCHKA) clean --all

clean.nuke: $(_M_TOOL) ## Risky: like clean.all, for matriochka images of every registry
	$(_M_NEED_ENGINE)
	$(MATRIOCHKA) clean --nuke

prune: $(_M_TOOL) ## Remove matriochka images unused for PRUNE_HOURS (48), keeping PRUNE_KEEP (24)
	$(_M_NEED_ENGINE)
	+$(MATRIOCHKA) prune$(if $(findstring n,$(firstword -$(MAKEFLAGS))), --dry-run)

lint: test.staging ## test.staging, and cargo fmt --check and clippy in the tool's own checkout
ifneq ($(wildcard $(_M_HERE)Cargo.toml),)
	cd $(_M_HERE) && cargo fmt --check && cargo clippy --all-targets -- -D warnings
endif

test.staging: $(_M_TOOL) ## Check every buildable flavor's staged files (`matriochka check`)
	$(MATRIOCHKA) check

test: ## Run the tests (no container engine needed)
	cd $(_M_HERE) && cargo test

test.e2e: ## Build, rebuild and push real images with podman, then docker (test.e2e.ENGINE)
	cd $(_M_HERE) && status=0; bash tests/e2e/run.sh podman || status=1; \
		bash tests/e2e/run.sh docker || status=1; exit $$status

test.e2e.podman: ## test.e2e with podman only (a private store)
	cd $(_M_HERE) && bash tests/e2e/run.sh podman

test.e2e.docker: ## test.e2e with docker only (on a dockerd that the test starts, as root)
	cd $(_M_HERE) && bash tests/e2e/run.sh docker

test.release: ## Two arches on four machines: manifest lists, REUSE (podman, qemu, registry)
	cd $(_M_HERE) && bash tests/e2e/release.sh

test.images: ## SQUASH layers, prune: real images, podman then docker (test.images.ENGINE)
	cd $(_M_HERE) && status=0; bash tests/e2e/images.sh podman || status=1; \
		bash tests/e2e/images.sh docker || status=1; exit $$status

test.images.podman: ## test.images with podman only (a private store)
	cd $(_M_HERE) && bash tests/e2e/images.sh podman

test.images.docker: ## test.images with docker only (on dockerds that the test starts, as root)
	cd $(_M_HERE) && bash tests/e2e/images.sh docker

test.ceph-stub: ## Run every RUN of each buildable flavor's daemon-base offline, against stubs
	cd $(_M_HERE) && bash tests/e2e/ceph_stub.sh

.PHONY: test.ceph-real
test.ceph-real: ## Build the test flavor (Ceph of Debian trixie), run a real cluster and the demo
	cd $(_M_HERE) && bash tests/e2e/ceph_real.sh

# BENCH_ARGS reaches the shell as data, split on blanks, as BAKE_ARGS does (below).
bench bench.ci: export _M_BENCH_ARGS = $(value BENCH_ARGS)
bench: ## Run the benchmark and print its table
	set -f; cd $(_M_HERE) && bench/run $$_M_BENCH_ARGS

.PHONY: bench.ci
bench.ci: ## CI benchmark: fresh stores, a warm registry, REUSE=1 vs a full rebuild
	set -f; cd $(_M_HERE) && bench/ci $$_M_BENCH_ARGS

# The checkout's binary, built for release, as $(PREFIX)/bin/matriochka. PREFIX reaches the
# shell as data (the environment), quoted; the binary is copied beside its place, then renamed
# over it, so a running or interrupted install never leaves half a binary there.
PREFIX ?= /usr/local
install: export _M_PREFIX = $(value PREFIX)
ifneq ($(_M_CHECKOUT_TOOL),)
install: $(_M_CHECKOUT_TOOL) ## Install matriochka as PREFIX/bin/matriochka (default PREFIX: /usr/local)
	@if [ -z "$$_M_PREFIX" ]; then echo 'error: PREFIX is empty: set it to a directory, e.g. /usr/local' >&2; exit 2; fi
	install -d "$$_M_PREFIX/bin"
	install -m 755 $(_M_CHECKOUT_TOOL) "$$_M_PREFIX/bin/.matriochka.tmp" \
		&& mv -f "$$_M_PREFIX/bin/.matriochka.tmp" "$$_M_PREFIX/bin/matriochka" \
		|| { rm -f "$$_M_PREFIX/bin/.matriochka.tmp"; exit 1; }
else
install:
	@echo 'error: `make install` installs the binary of a matriochka checkout: run it in one' >&2; exit 2
endif

show.flavors: $(_M_TOOL) ## List the buildable flavors
	@$(MATRIOCHKA) show flavors

flavors.modified: $(_M_TOOL) ## List the buildable flavors this branch changes (VS_BRANCH, FETCH=1)
	@$(MATRIOCHKA) modified $(if $(value VS_BRANCH),--vs "$$VS_BRANCH") $(if $(filter 1,$(value FETCH)),--fetch)

# BuildKit: `docker buildx bake` on the bake file (README, "Building on a BuildKit cluster").
# BAKE_ARGS reaches the shell as data (an environment variable split on blanks, no globbing),
# never as make or shell code. Contexts in the file are relative to this directory, where bake
# resolves them unless BUILDX_BAKE_FILE_RELATIVE_PATHS is set: it is unset for the run.
_M_NEED_BUILDX = $(if $(shell docker buildx version >/dev/null 2>&1 && echo yes),,$(error \
	`docker buildx` is not installed: install the buildx plugin to run `make bake`))
.PHONY: bake graph
# Not exported as such: make would expand them (a `$(shell …)` in them would run) to build the
# environment of every recipe.
unexport BAKE_ARGS BAKE_CACHE
bake: export _M_BAKE_ARGS = $(value BAKE_ARGS)
bake: export _M_BAKE_CACHE = $(value BAKE_CACHE)
bake: export _M_BAKE_FILE = $(_M_STAGING_ROOT)/docker-bake.json
bake: export _M_BAKE_DIR = $(_M_ROOT)
bake: $(_M_TOOL) ## Stage, write the bake file and run `docker buildx bake` (BAKE_ARGS, BAKE_CACHE)
	$(_M_NEED_BUILDX)
	+BAKE_CACHE="$$_M_BAKE_CACHE" $(MATRIOCHKA) bake$(if $(filter 1,$(value BAKE_MERGE_ARCHES)), --merge-arches)
	set -f; cd "$$_M_BAKE_DIR" && env -u BUILDX_BAKE_FILE_RELATIVE_PATHS docker buildx bake --file "$$_M_BAKE_FILE" $$_M_BAKE_ARGS

# From a subdirectory, where the root's targets write: below the project root.
graph: export _M_GRAPH = $(if $(filter-out $(CURDIR),$(_M_ROOT)),$(_M_ROOT)/)$(_M_STAGING_ROOT)/graph
graph: $(_M_TOOL) ## Write the image graph to staging/graph.dot, and graph.svg when dot is installed
	@mkdir -p "$$(dirname "$$_M_GRAPH")"
	@$(MATRIOCHKA) graph --dot > "$$_M_GRAPH.dot.tmp" && mv -f "$$_M_GRAPH.dot.tmp" "$$_M_GRAPH.dot" \
		|| { rm -f "$$_M_GRAPH.dot.tmp"; exit 1; }
	@echo "wrote $$_M_GRAPH.dot"
	@if command -v dot >/dev/null; then \
		dot -Tsvg -o "$$_M_GRAPH.svg.tmp" "$$_M_GRAPH.dot" && mv -f "$$_M_GRAPH.svg.tmp" "$$_M_GRAPH.svg" \
		|| { rm -f "$$_M_GRAPH.svg.tmp"; exit 1; }; echo "wrote $$_M_GRAPH.svg"; \
	else echo "dot is not installed: $$_M_GRAPH.svg not written"; fi
