"""ECS cluster: Container Insights, FARGATE and FARGATE_SPOT capacity providers, a service discovery namespace."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

from components.ordering import after


@dataclasses.dataclass(frozen=True)
class EcsClusterArgs:
    """Inputs of :class:`EcsCluster`."""

    cluster_name: str
    """Physical cluster name (GPU nodes join it by this name, so it is fixed up front)."""
    vpc_id: pulumi.Input[str]
    """VPC of the private DNS namespace."""
    namespace: str
    """Private DNS namespace for service discovery, e.g. ``artwork-matcher-demo.internal``."""
    container_insights: bool = True
    """Turn on Container Insights metrics."""
    extra_capacity_providers: Sequence[pulumi.Input[str]] = ()
    """EC2 capacity providers (the GPU node group's) added next to FARGATE and FARGATE_SPOT."""


class EcsCluster(pulumi.ComponentResource):
    """An ECS cluster with its capacity providers and a Cloud Map private DNS namespace.

    Attributes:
        cluster_name: The cluster's name.
        cluster_arn: The cluster's ARN, resolved only once its capacity providers are associated, so every service
            created with it waits for the association (else ECS refuses a strategy naming a provider it does not
            know yet).
        namespace_id: The Cloud Map namespace id services register in.
        namespace_name: The namespace's DNS name (services are ``<service>.<namespace_name>``).
    """

    def __init__(self, name: str, args: EcsClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("artwork-matcher:cluster:EcsCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.cluster = aws.ecs.Cluster(
            f"{name}-cluster",
            name=args.cluster_name,
            settings=[
                aws.ecs.ClusterSettingArgs(
                    name="containerInsights", value="enabled" if args.container_insights else "disabled"
                )
            ],
            opts=child,
        )
        self.capacity_providers = aws.ecs.ClusterCapacityProviders(
            f"{name}-capacity",
            cluster_name=self.cluster.name,
            capacity_providers=["FARGATE", "FARGATE_SPOT", *args.extra_capacity_providers],
            default_capacity_provider_strategies=[
                aws.ecs.ClusterCapacityProvidersDefaultCapacityProviderStrategyArgs(
                    capacity_provider="FARGATE", weight=1, base=0
                )
            ],
            opts=child,
        )
        self.namespace = aws.servicediscovery.PrivateDnsNamespace(
            f"{name}-namespace",
            name=args.namespace,
            vpc=args.vpc_id,
            description="Internal names of the artwork-matcher services",
            opts=child,
        )
        self.cluster_name = self.cluster.name
        self.cluster_arn = after(self.cluster.arn, self.capacity_providers)
        self.namespace_id = self.namespace.id
        self.namespace_name = args.namespace
        self.register_outputs(
            {"cluster_name": self.cluster_name, "cluster_arn": self.cluster_arn, "namespace_id": self.namespace_id}
        )
