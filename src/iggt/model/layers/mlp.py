"""Two-layer perceptron used inside every transformer block."""

from torch import Tensor, nn

from iggt.model.layers.gelu_epilogue import epilogue_dtype, linear_gelu


class Mlp(nn.Module):
    """fc1 -> GELU -> fc2 on the last dimension: (..., in_features) -> (..., out_features)."""

    def __init__(self, in_features: int, hidden_features: int | None = None, out_features: int | None = None) -> None:
        super().__init__()
        hidden_features = hidden_features or in_features
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_features, out_features or in_features)

    def forward(self, x: Tensor) -> Tensor:
        dtype = epilogue_dtype(x, self.fc1)
        hidden = self.act(self.fc1(x)) if dtype is None else linear_gelu(x, self.fc1, dtype)
        return self.fc2(hidden)
