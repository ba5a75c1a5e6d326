"""Type aliases of pydl's annotations (pydl ships py.typed; ``mypy pydl`` runs in CI)."""
from typing import Any, Union

import numpy as np
import numpy.typing as npt

#: a numpy array of any dtype and shape (pydl checks dtypes and shapes at run time, naming them)
Array = npt.NDArray[Any]
#: a dtype argument: np.float32, "float64", np.dtype(...)
DTypeLike = npt.DTypeLike
#: a seed or generator, as numpy's default_rng takes
SeedLike = Union[None, int, np.random.Generator]
