"""The test suite's small deployment (built once per session by conftest's ``deployment_home``)."""

from radioloc.deploy.build import DeploymentSpec

SMALL_DEPLOYMENT = DeploymentSpec(id="t512", city="generated:4", size_m=512, survey=600, seed=3)
