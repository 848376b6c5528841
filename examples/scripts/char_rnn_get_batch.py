"""A character-level GRU language model on a generated toy corpus, nanoGPT-style loop.

No DataLoader: get_batch(split) cuts random windows out of one long tensor of character ids,
and training is `for it in range(max_iters)` with an evaluation every `eval_interval`
iterations (estimate_loss averages `eval_iters` random batches per split). The learning
rate decays linearly; at the end a sample is written to sample.txt.
"""

import random

import torch
from torch import nn
from torch.nn import functional as F

# hyperparameters
batch_size = 16
block_size = 32
max_iters = 120
eval_interval = 40
eval_iters = 10
learning_rate = 5e-3
embed_dim = 32
hidden_dim = 64
device = "cuda" if torch.cuda.is_available() else "cpu"
torch.manual_seed(1234)


def generate_corpus(sentences, seed):
    """Sentences from a tiny grammar, so the model has structure to learn."""
    pick = random.Random(seed).choice
    subjects = ["the cat", "a dog", "my robot", "the old sailor", "every child"]
    verbs = ["sees", "chases", "paints", "forgets", "builds"]
    objects = ["a boat", "the moon", "two apples", "a red kite", "the garden"]
    return " ".join(f"{pick(subjects)} {pick(verbs)} {pick(objects)}." for _ in range(sentences))


text = generate_corpus(600, seed=5)
chars = sorted(set(text))
vocab_size = len(chars)
stoi = {ch: i for i, ch in enumerate(chars)}
itos = {i: ch for ch, i in stoi.items()}


def encode(s):
    return [stoi[c] for c in s]


def decode(ids):
    return "".join(itos[i] for i in ids)


data = torch.tensor(encode(text), dtype=torch.long)
n = int(0.9 * len(data))
train_data = data[:n]
val_data = data[n:]


def get_batch(split):
    source = train_data if split == "train" else val_data
    ix = torch.randint(len(source) - block_size, (batch_size,))
    x = torch.stack([source[i : i + block_size] for i in ix])
    y = torch.stack([source[i + 1 : i + block_size + 1] for i in ix])
    return x.to(device), y.to(device)


class CharGRU(nn.Module):
    def __init__(self, vocab_size, embed_dim, hidden_dim):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.gru = nn.GRU(embed_dim, hidden_dim, batch_first=True)
        self.head = nn.Linear(hidden_dim, vocab_size)

    def forward(self, idx, hidden=None):
        out, hidden = self.gru(self.embed(idx), hidden)
        return self.head(out), hidden

    @torch.no_grad()
    def generate(self, idx, max_new_tokens):
        logits, hidden = self(idx)
        for _ in range(max_new_tokens):
            probs = F.softmax(logits[:, -1, :], dim=-1)
            next_id = torch.multinomial(probs, num_samples=1)
            idx = torch.cat([idx, next_id], dim=1)
            logits, hidden = self(next_id, hidden)
        return idx


@torch.no_grad()
def estimate_loss():
    out = {}
    model.eval()
    for split in ["train", "val"]:
        losses = torch.zeros(eval_iters)
        for k in range(eval_iters):
            xb, yb = get_batch(split)
            logits, _ = model(xb)
            losses[k] = F.cross_entropy(logits.view(-1, vocab_size), yb.view(-1)).item()
        out[split] = losses.mean()
    model.train()
    return out


model = CharGRU(vocab_size, embed_dim, hidden_dim).to(device)
optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda it: 1.0 - 0.9 * it / max_iters)

for it in range(max_iters):
    xb, yb = get_batch("train")
    logits, _ = model(xb)
    loss = F.cross_entropy(logits.view(-1, vocab_size), yb.view(-1))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    scheduler.step()

    if (it + 1) % eval_interval == 0 or it == max_iters - 1:
        losses = estimate_loss()
        print(f"step {it + 1}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}")

model.eval()
context = torch.tensor([encode("the ")], dtype=torch.long, device=device)
with open("sample.txt", "w") as f:
    f.write(decode(model.generate(context, max_new_tokens=120)[0].tolist()))
