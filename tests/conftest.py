import pytest

from radioloc.datasets.builder import DatasetConfig, generate_dataset
from radioloc.datasets.protocol import ProtocolConfig

SMALL = ProtocolConfig(candidates_per_map=12, sets_per_map=3, ues_per_map=20)


def small_config(**overrides) -> DatasetConfig:
    return DatasetConfig(**{"maps": 3, "seed": 5, "simulations": ("DPM", "DPMcars"), "protocol": SMALL, **overrides})


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("data") / "ds"
    manifest = generate_dataset(root, small_config(), workers=2, quiet=True)
    return root, manifest


@pytest.fixture(scope="session")
def deployment_home(tmp_path_factory):
    """A 512 x 512 m deployment (generated city, 9 BSs, DPM maps, DPMcars truth), built once for the session."""
    from deploy_spec import SMALL_DEPLOYMENT

    from radioloc.deploy.build import build_deployment
    from radioloc.deploy.deployment import DeploymentStore

    root = tmp_path_factory.mktemp("home")
    build_deployment(DeploymentStore(root), SMALL_DEPLOYMENT, quiet=True)
    return root
