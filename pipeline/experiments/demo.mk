# The demo: the bundled 2,000-image Fashion-MNIST sample at 32 px gray
# (levels 4, 8, 16, 32 px). Training takes a few minutes on 2 cores.
IMAGES := $(ROOT)/datasets/fashion-mnist/sample
PREP_ARGS := --size 32 --color gray
TRAIN_ARGS := --steps 1500 --seed 1
REPORT_ARGS := --samples 1024 --seed 1
