# The demo: the bundled 2,000-image Fashion-MNIST sample at 32 px gray
# (levels 4, 8, 16, 32 px). The learning rates are raised from the
# default 2e-4 to 5e-4 so that 1,500 steps, a few minutes on 2 cores,
# give recognizable tops, trousers, dresses and shoes.
IMAGES := $(ROOT)/datasets/fashion-mnist/sample
PREP_ARGS := --size 32 --color gray
TRAIN_ARGS := --steps 1500 --lr-g 5e-4 --lr-d 5e-4 --seed 1
REPORT_ARGS := --samples 1024 --seed 1
