"""Network: a VPC with public and private subnets per zone, NAT gateways and optional VPC endpoints."""

from __future__ import annotations

import dataclasses
import ipaddress
from typing import Any

import pulumi
import pulumi_aws as aws

INTERFACE_ENDPOINTS: tuple[str, ...] = ("ecr.api", "ecr.dkr", "logs", "secretsmanager")
"""Interface endpoints created with ``enable_vpc_endpoints`` (besides the free S3 gateway endpoint)."""


def subnet_cidrs(vpc_cidr: str, az_count: int) -> tuple[list[str], list[str]]:
    """Carve deterministic /20 subnets: public from the first block, private from the ninth.

    Args:
        vpc_cidr: The VPC's CIDR, a /16 or larger.
        az_count: Zones used; one public and one private subnet each.

    Returns:
        ``(public, private)`` CIDR lists, one entry per zone in zone order.
    """
    network = ipaddress.ip_network(vpc_cidr)
    blocks = list(network.subnets(new_prefix=20)) if network.prefixlen <= 16 else []
    if az_count > 8 or len(blocks) < 16:
        raise ValueError(f"{vpc_cidr} cannot hold {az_count} public and private /20 subnets")
    return [str(b) for b in blocks[:az_count]], [str(b) for b in blocks[8 : 8 + az_count]]


@dataclasses.dataclass(frozen=True)
class NetworkArgs:
    """Inputs of :class:`Network`."""

    cidr_block: str = "10.0.0.0/16"
    """The VPC's IPv4 CIDR."""
    az_count: int = 2
    """Zones used, in the order the region lists them."""
    single_nat_gateway: bool = True
    """One NAT gateway in the first zone for all private subnets; false gives each zone its own."""
    enable_vpc_endpoints: bool = False
    """Add the S3 gateway endpoint and the :data:`INTERFACE_ENDPOINTS`."""
    enable_nat_gateway: bool = True
    """NAT for the private subnets; false leaves them without a route out (only for what needs no internet, such
    as EFS mount targets; tasks then run in the public subnets with public IPs)."""


class Network(pulumi.ComponentResource):
    """A VPC, public subnets behind an internet gateway and private subnets behind NAT.

    Attributes:
        vpc_id: The VPC's id.
        public_subnet_ids: One public subnet per zone (the load balancer and NAT gateways).
        private_subnet_ids: One private subnet per zone (tasks, GPU nodes, EFS mount targets).
    """

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("artwork-matcher:network:Network", name, None, opts)
        self._name = name
        self._args = args
        public_cidrs, private_cidrs = subnet_cidrs(args.cidr_block, args.az_count)
        zones = aws.get_availability_zones_output(state="available", opts=pulumi.InvokeOutputOptions(parent=self))
        self._zones = [zones.names[i] for i in range(args.az_count)]
        self.vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.cidr_block,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={"Name": f"{name}-vpc"},
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.public_subnets = self._create_subnets("public", public_cidrs)
        self.private_subnets = self._create_subnets("private", private_cidrs)
        igw = self._create_public_routing()
        nat_ids = self._create_nat_gateways(igw)
        private_tables = self._create_private_routing(nat_ids)
        if args.enable_vpc_endpoints:
            self._create_endpoints(private_tables)
        self.vpc_id = self.vpc.id
        self.public_subnet_ids = [s.id for s in self.public_subnets]
        self.private_subnet_ids = [s.id for s in self.private_subnets]
        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "public_subnet_ids": self.public_subnet_ids,
                "private_subnet_ids": self.private_subnet_ids,
            }
        )

    def _opts(self, **kwargs: Any) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, **kwargs)

    def _create_subnets(self, tier: str, cidrs: list[str]) -> list[aws.ec2.Subnet]:
        return [
            aws.ec2.Subnet(
                f"{self._name}-{tier}-{i}",
                vpc_id=self.vpc.id,
                cidr_block=cidr,
                availability_zone=self._zones[i],
                map_public_ip_on_launch=False,
                tags={"Name": f"{self._name}-{tier}-{i}", "tier": tier},
                opts=self._opts(),
            )
            for i, cidr in enumerate(cidrs)
        ]

    def _create_public_routing(self) -> aws.ec2.InternetGateway:
        igw = aws.ec2.InternetGateway(f"{self._name}-igw", vpc_id=self.vpc.id, opts=self._opts())
        table = aws.ec2.RouteTable(f"{self._name}-public-rt", vpc_id=self.vpc.id, opts=self._opts())
        aws.ec2.Route(
            f"{self._name}-public-default",
            route_table_id=table.id,
            destination_cidr_block="0.0.0.0/0",
            gateway_id=igw.id,
            opts=self._opts(),
        )
        for i, subnet in enumerate(self.public_subnets):
            aws.ec2.RouteTableAssociation(
                f"{self._name}-public-rta-{i}", subnet_id=subnet.id, route_table_id=table.id, opts=self._opts()
            )
        return igw

    def _create_nat_gateways(self, igw: aws.ec2.InternetGateway) -> list[pulumi.Output[str]]:
        if not self._args.enable_nat_gateway:
            return []
        count = 1 if self._args.single_nat_gateway else self._args.az_count
        ids = []
        for i in range(count):
            eip = aws.ec2.Eip(f"{self._name}-nat-eip-{i}", domain="vpc", opts=self._opts())
            nat = aws.ec2.NatGateway(
                f"{self._name}-nat-{i}",
                allocation_id=eip.id,
                subnet_id=self.public_subnets[i].id,
                tags={"Name": f"{self._name}-nat-{i}"},
                # a public NAT gateway needs the VPC's internet gateway attached first (AWS documents the order)
                opts=self._opts(depends_on=[igw]),
            )
            ids.append(nat.id)
        return ids

    def _create_private_routing(self, nat_ids: list[pulumi.Output[str]]) -> list[aws.ec2.RouteTable]:
        tables = []
        for i, subnet in enumerate(self.private_subnets):
            table = aws.ec2.RouteTable(f"{self._name}-private-rt-{i}", vpc_id=self.vpc.id, opts=self._opts())
            if nat_ids:
                aws.ec2.Route(
                    f"{self._name}-private-default-{i}",
                    route_table_id=table.id,
                    destination_cidr_block="0.0.0.0/0",
                    nat_gateway_id=nat_ids[i % len(nat_ids)],
                    opts=self._opts(),
                )
            aws.ec2.RouteTableAssociation(
                f"{self._name}-private-rta-{i}", subnet_id=subnet.id, route_table_id=table.id, opts=self._opts()
            )
            tables.append(table)
        return tables

    def _create_endpoints(self, private_tables: list[aws.ec2.RouteTable]) -> None:
        region = aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=self)).region
        aws.ec2.VpcEndpoint(
            f"{self._name}-s3",
            vpc_id=self.vpc.id,
            service_name=pulumi.Output.concat("com.amazonaws.", region, ".s3"),
            vpc_endpoint_type="Gateway",
            route_table_ids=[t.id for t in private_tables],
            opts=self._opts(),
        )
        sg = aws.ec2.SecurityGroup(
            f"{self._name}-endpoints-sg",
            vpc_id=self.vpc.id,
            description="HTTPS to interface endpoints from inside the VPC only",
            opts=self._opts(),
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{self._name}-endpoints-https",
            security_group_id=sg.id,
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            cidr_ipv4=self._args.cidr_block,
            opts=self._opts(),
        )
        for service in INTERFACE_ENDPOINTS:
            aws.ec2.VpcEndpoint(
                f"{self._name}-{service.replace('.', '-')}",
                vpc_id=self.vpc.id,
                service_name=pulumi.Output.concat("com.amazonaws.", region, f".{service}"),
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
                subnet_ids=[s.id for s in self.private_subnets],
                security_group_ids=[sg.id],
                opts=self._opts(),
            )
