"""Seeds of generated scripts that found a converter bug, each with what it found.

Each one trained differently (or failed) after conversion before the fix that its line
names; test_fuzz.py checks that every one is now converted faithfully or refused. A seed is a
pure function of fuzz/generate.py: change the grammar only by adding draws at the END of
generate.choices(), so that these seeds keep drawing the same scripts.
"""

SEEDS = {
    0: "itertools.islice(loader) handed to the Trainer: exhausted after the first epoch",
    1: "islice made again each epoch must not start a pass when Lightning checks iter()",
    4: "a DataLoader rebuilt each epoch, stored where the Trainer never reads it",
    31: "a DataLoader rebuilt each epoch (module level)",
    159: "accumulation without dividing the loss: Lightning divided it",
    132: "accumulation without dividing the loss (trainer class)",
    49: "accumulation window counted by a counter, not the epoch's batch index",
    34: "accumulation in a step loop: max_steps counts optimizer steps",
    105: "accumulation in a step loop, 1-based counter",
    2041: "accumulation whose epoch ends in an incomplete window (islice of 4, window 3): Lightning steps it",
    43: "a conditional epoch scheduler step turned into a plain one",
    174: "a conditional epoch scheduler step (param groups)",
    153: "scheduler.step(epoch + 1) turned into a plain scheduler",
    16: "scheduler.step(arg) with accumulation",
    102: "manual optimization (two optimizers): Lightning steps no scheduler, the step was dropped",
    142: "a step loop with two optimizers: max_steps counted both optimizers' steps",
    51: "a list of batches handed to the Trainer: read as several dataloaders",
    79: "a list of batches handed to the Trainer",
    5: "a module-level counter the loop updates started as None",
    40: "a global counter updated in a method: the write-back made it local to fit()",
    88: "a trainer class holding a list of batches in self.loader, handed to the Trainer",
    14: "enumerate(loader, 1): a 1-based index read as batch_idx",
    58: "a global counter in a step loop over a generator",
    20: "a fold loop building a fresh optimizer per fold, refused as one optimizer per layer",
    7: "undivided accumulation: manual optimization keeps the script's own steps",
    18: "accumulation `i % K == K - 1` over enumerate(loader, 1): manual optimization",
    3: "a conditional scheduler step with a closure optimizer: stays refused",
}

# Seeds of mechanisms that were refused and now convert: each must stay converted and the same
# (a refusal here is a regression of the conversion rate, not of faithfulness).
CONVERTED = {
    20: "a fold loop that builds a fresh optimizer per fold (was: one optimizer per layer)",
    42: "a fold loop with param groups",
    7: "undivided accumulation -> manual optimization with the script's own window",
    18: "accumulation `i % K == K - 1` over enumerate(loader, 1) -> manual optimization",
    61: "accumulation on a counter of the trainer class -> manual optimization",
    43: "a conditional epoch scheduler step -> manual optimization, the condition kept",
    16: "scheduler.step(epoch + 1) -> manual optimization, the call kept",
    4: "a DataLoader rebuilt each epoch -> train_dataloader(), reloaded every epoch",
    64: "a DataLoader rebuilt each epoch in a trainer class's method",
    147: "a DataLoader rebuilt each epoch in a step loop",
    40: "a global counter updated in a method, fit() not declaring it: written via globals()",
}
