"""ECS cluster: Container Insights, FARGATE and FARGATE_SPOT capacity providers, an optional GPU node group, and a
service discovery namespace."""

from __future__ import annotations

import dataclasses

import pulumi
import pulumi_aws as aws

from components.gpu import GpuNodeGroup, GpuNodeGroupArgs
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
    gpu_node_group: GpuNodeGroupArgs | None = None
    """A GPU node group whose capacity provider joins FARGATE and FARGATE_SPOT. It is built after the cluster and
    before the association: nodes join a cluster that exists, and ``destroy`` removes them before the cluster (ECS
    refuses to delete a cluster with container instances)."""

    def __post_init__(self) -> None:
        if self.gpu_node_group is not None and self.gpu_node_group.cluster_name != self.cluster_name:
            raise ValueError(
                "gpu_node_group.cluster_name and cluster_name differ: the nodes would join another cluster"
            )


class EcsCluster(pulumi.ComponentResource):
    """An ECS cluster with its capacity providers and a Cloud Map private DNS namespace.

    Attributes:
        cluster_name: The cluster's name.
        cluster_arn: The cluster's ARN, resolved only once its capacity providers are associated, so every service
            created with it waits for the association (else ECS refuses a strategy naming a provider it does not
            know yet).
        namespace_id: The Cloud Map namespace id services register in.
        namespace_name: The namespace's DNS name (services are ``<service>.<namespace_name>``).
        gpu_node_group: The GPU node group, when one was asked for.
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
        self.gpu_node_group = (
            GpuNodeGroup(f"{name}-gpu", dataclasses.replace(args.gpu_node_group, cluster_name=self.cluster.name), child)
            if args.gpu_node_group is not None
            else None
        )
        extra = [self.gpu_node_group.capacity_provider_name] if self.gpu_node_group else []
        self.capacity_providers = aws.ecs.ClusterCapacityProviders(
            f"{name}-capacity",
            cluster_name=self.cluster.name,
            capacity_providers=["FARGATE", "FARGATE_SPOT", *extra],
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
