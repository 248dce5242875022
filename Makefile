# The functions' build for `sam build` (template.yaml: BuildMethod makefile; samconfig.toml
# builds in source). SAM calls build-<LogicalId> once per function; the first call compiles every
# function crate in one `cargo lambda build`, so the dependencies are compiled once and the
# release links run side by side, and each later call finds cargo's work done and only copies its
# bootstrap. scripts/build runs it for either architecture and checks what it built.
#
#   ARCHITECTURE  arm64 (default, as the template's Architecture parameter) or x86_64; pass the
#                 same value as the parameter (scripts/build and scripts/deploy do)
#   PROFILE       release (default, what is deployed) or dev (a quicker check of the same path)

ARCHITECTURE ?= arm64
PROFILE ?= release
FUNCTIONS := record-activity query-activity export-activity export-worker integrity seal-heads \
  sequence-feed manage-destinations deliver-feed

ifeq ($(ARCHITECTURE),arm64)
  TARGET := aarch64-unknown-linux-gnu
else ifeq ($(ARCHITECTURE),x86_64)
  TARGET := x86_64-unknown-linux-gnu
else
  $(error ARCHITECTURE must be arm64 or x86_64, not "$(ARCHITECTURE)")
endif
ifeq ($(filter $(PROFILE),release dev),)
  $(error PROFILE must be release or dev, not "$(PROFILE)")
endif

# One directory per architecture and profile, so no build copies another one's bootstrap.
LAMBDA_DIR := target/sam-lambda/$(ARCHITECTURE)-$(PROFILE)

.PHONY: functions build-RecordActivityFunction build-QueryActivityFunction \
  build-ExportActivityFunction build-ExportWorkerFunction build-IntegrityFunction \
  build-SealHeadsFunction build-SequenceFeedFunction build-ManageDestinationsFunction \
  build-DeliverFeedFunction

functions:
	cargo lambda build --profile $(PROFILE) --target $(TARGET) --lambda-dir $(LAMBDA_DIR) \
	  $(addprefix --package ,$(FUNCTIONS))

define copy-bootstrap
	@test -n "$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is not set: run sam build" >&2; exit 1; }
	cp $(LAMBDA_DIR)/$(1)/bootstrap "$(ARTIFACTS_DIR)/bootstrap"
endef

build-RecordActivityFunction: functions
	$(call copy-bootstrap,record-activity)
build-QueryActivityFunction: functions
	$(call copy-bootstrap,query-activity)
build-ExportActivityFunction: functions
	$(call copy-bootstrap,export-activity)
build-ExportWorkerFunction: functions
	$(call copy-bootstrap,export-worker)
build-IntegrityFunction: functions
	$(call copy-bootstrap,integrity)
build-SealHeadsFunction: functions
	$(call copy-bootstrap,seal-heads)
build-SequenceFeedFunction: functions
	$(call copy-bootstrap,sequence-feed)
build-ManageDestinationsFunction: functions
	$(call copy-bootstrap,manage-destinations)
build-DeliverFeedFunction: functions
	$(call copy-bootstrap,deliver-feed)
