"""CAMELS CMD data layer: reading/writing the CMD format, resolution change, normalisation,
dihedral augmentation, datasets split by simulation, and user-field input.

Imports only numpy, torch (and astropy for FITS input); nothing else from the package.
"""

from .cmd import (
    MAPS_PER_SIM,
    PARAM_NAMES,
    CMDPaths,
    CMDSet,
    find_cmd,
    load_cmd,
    maps_filename,
    params_filename,
    parse_maps_filename,
    read_params,
    write_cmd,
)
from .dataset import MapDataset, Split, split_by_simulation
from .fields import ACCEPTED_EXTENSIONS, PreparedField, check_map, prepare_field, read_field
from .transform import (
    Normalization,
    block_average,
    dihedral,
    dihedral_inverse,
    dihedral_inverse_index,
    looks_like_log10,
    to_log10,
)

__all__ = [
    "MAPS_PER_SIM", "PARAM_NAMES", "CMDPaths", "CMDSet", "find_cmd", "load_cmd", "maps_filename",
    "params_filename", "parse_maps_filename", "read_params", "write_cmd",
    "MapDataset", "Split", "split_by_simulation",
    "ACCEPTED_EXTENSIONS", "PreparedField", "check_map", "prepare_field", "read_field",
    "Normalization", "block_average", "dihedral", "dihedral_inverse", "dihedral_inverse_index",
    "looks_like_log10", "to_log10",
]
