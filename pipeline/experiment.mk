# The stages of one experiment; included by the Makefile with EXP set.
# Settings come from experiments/$(EXP).mk:
#   IMAGES       folder of PNG/JPEG files
#   PREP_ARGS    fsr-prep options
#   TRAIN_ARGS   fsr-train options
#   REPORT_ARGS  fsr-report options
# Intermediate files go to $(RUNS)/$(EXP)/ (default build/runs/), the
# report to $(REPORTS)/$(EXP)/ (default reports/).

EXPERIMENT_FILE ?= $(ROOT)/pipeline/experiments/$(EXP).mk
RUNS ?= $(BUILD)/runs
REPORTS ?= $(ROOT)/reports
include $(EXPERIMENT_FILE)

RUN := $(RUNS)/$(EXP)
REPORT := $(REPORTS)/$(EXP)
IMAGE_FILES := $(shell find -L $(IMAGES) -type f 2>/dev/null | sort)

.PHONY: run FORCE
run: $(REPORT)/index.html
	@echo "$(EXP): report at $(REPORT)/index.html"

# A stage's settings live in a stamp file that is rewritten only when
# they change, so editing one setting reruns that stage and the later
# ones, and nothing else.
define settings_stamp
$(RUN)/$(1).settings: FORCE
	@mkdir -p $(RUN)
	@echo '$(2)' | cmp -s - $$@ || echo '$(2)' > $$@
endef
$(eval $(call settings_stamp,prep,$(PREP_ARGS) $(IMAGES)))
$(eval $(call settings_stamp,train,$(TRAIN_ARGS)))
$(eval $(call settings_stamp,report,$(REPORT_ARGS)))

$(RUN)/data/manifest.json: $(RUN)/prep.settings $(BUILD)/fsr-prep $(IMAGES) $(IMAGE_FILES)
	$(BUILD)/fsr-prep --overwrite $(PREP_ARGS) $(IMAGES) $(RUN)/data

$(RUN)/train/final.safetensors: $(RUN)/train.settings $(BUILD)/fsr-train $(RUN)/data/manifest.json
	$(BUILD)/fsr-train --overwrite $(TRAIN_ARGS) $(RUN)/data $(RUN)/train

$(REPORT)/index.html: $(RUN)/report.settings $(BUILD)/fsr-report $(RUN)/train/final.safetensors
	$(BUILD)/fsr-report $(REPORT_ARGS) --data $(RUN)/data \
	    --init $(RUN)/train/init.safetensors \
	    --trained $(RUN)/train/final.safetensors --out $(REPORT)
