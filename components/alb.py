"""Load balancer: an internet-facing ALB with a /health target group, HTTP or HTTPS with redirect.

HTTPS needs a certificate that ``pulumi up`` can actually obtain: either the program requests one from ACM and
validates it through records it creates in the domain's Route 53 hosted zone (``hosted_zone_id``), or the deployer
hands in an issued certificate (``certificate_arn``). A requested certificate whose records nobody creates would
leave ``up`` waiting on the validation until it times out, so that combination is refused.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

from components.ordering import after
from services.common.topology import HEALTH_PATH

TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"


@dataclasses.dataclass(frozen=True)
class LoadBalancerArgs:
    """Inputs of :class:`LoadBalancer`."""

    vpc_id: pulumi.Input[str]
    vpc_cidr: str
    """The load balancer may only send traffic into the VPC."""
    subnet_ids: Sequence[pulumi.Input[str]]
    """Public subnets, one per zone."""
    target_port: int
    """The gateway's container port."""
    enable_https: bool = False
    """HTTPS on 443 for ``domain_name``; port 80 then only redirects."""
    domain_name: str | None = None
    hosted_zone_id: str | None = None
    """Route 53 zone of ``domain_name``: a certificate is requested, validated through records made there, and
    ``domain_name`` becomes an alias of the load balancer."""
    certificate_arn: str | None = None
    """An issued ACM certificate for ``domain_name`` (DNS managed elsewhere), used as it is."""
    health_check_path: str = HEALTH_PATH

    def __post_init__(self) -> None:
        if self.enable_https != bool(self.domain_name):
            raise ValueError("enable_https and domain_name go together: HTTPS needs the certificate's domain name")
        if self.hosted_zone_id and self.certificate_arn:
            raise ValueError("hosted_zone_id and certificate_arn conflict: request a certificate or bring one")
        if self.enable_https and not (self.hosted_zone_id or self.certificate_arn):
            raise ValueError("enable_https needs hosted_zone_id (validate a new certificate) or certificate_arn")
        if (self.hosted_zone_id or self.certificate_arn) and not self.enable_https:
            raise ValueError("hosted_zone_id and certificate_arn are only used with enable_https")


class LoadBalancer(pulumi.ComponentResource):
    """ALB, its security group (80/443 from anywhere), an IP target group and the listeners.

    Attributes:
        security_group_id: The ALB's group; the gateway admits only it.
        target_group_arn: Where the gateway's tasks register; resolved only once the listener forwarding to the
            group exists, since ECS refuses a target group that has no load balancer yet.
        resource_label: ``<lb suffix>/<tg suffix>``, for request-count scaling (also after that listener).
        arn_suffix: The ALB's CloudWatch dimension.
        dns_name: The ALB's public name.
        certificate_validation: The ACM DNS validation records the program created (empty unless it requested the
            certificate).
        zone_id: The load balancer's canonical hosted zone (for alias records).
    """

    def __init__(self, name: str, args: LoadBalancerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("artwork-matcher:alb:LoadBalancer", name, None, opts)
        self._name = name
        self._args = args
        self.security_group = self._create_security_group()
        self.lb = aws.lb.LoadBalancer(
            f"{name}-alb",
            load_balancer_type="application",
            internal=False,
            security_groups=[self.security_group.id],
            subnets=list(args.subnet_ids),
            drop_invalid_header_fields=True,
            idle_timeout=60,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.target_group = aws.lb.TargetGroup(
            f"{name}-tg",
            port=args.target_port,
            protocol="HTTP",
            target_type="ip",
            vpc_id=args.vpc_id,
            deregistration_delay=30,
            health_check=aws.lb.TargetGroupHealthCheckArgs(
                path=args.health_check_path, matcher="200", interval=15, healthy_threshold=2, unhealthy_threshold=3
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.certificate_validation: pulumi.Output[Any] | list[Any] = []
        if args.enable_https:
            forwarding = self._create_https_listeners()
        else:
            forwarding = self._create_listener(80, "HTTP", self._forward())
        self.security_group_id = self.security_group.id
        self.target_group_arn = after(self.target_group.arn, forwarding)
        self.arn = self.lb.arn
        self.arn_suffix = self.lb.arn_suffix
        self.dns_name = self.lb.dns_name
        self.zone_id = self.lb.zone_id
        self.resource_label = after(
            pulumi.Output.concat(self.lb.arn_suffix, "/", self.target_group.arn_suffix), forwarding
        )
        self.register_outputs(
            {"dns_name": self.dns_name, "target_group_arn": self.target_group_arn, "arn_suffix": self.arn_suffix}
        )

    def _create_security_group(self) -> aws.ec2.SecurityGroup:
        group = aws.ec2.SecurityGroup(
            f"{self._name}-sg",
            vpc_id=self._args.vpc_id,
            description="Public load balancer: HTTP/HTTPS in, the gateway out",
            opts=pulumi.ResourceOptions(parent=self),
        )
        ports = [80, 443] if self._args.enable_https else [80]
        for port in ports:
            aws.vpc.SecurityGroupIngressRule(
                f"{self._name}-in-{port}",
                security_group_id=group.id,
                ip_protocol="tcp",
                from_port=port,
                to_port=port,
                cidr_ipv4="0.0.0.0/0",
                opts=pulumi.ResourceOptions(parent=self),
            )
        aws.vpc.SecurityGroupEgressRule(
            f"{self._name}-out-vpc",
            security_group_id=group.id,
            ip_protocol="tcp",
            from_port=self._args.target_port,
            to_port=self._args.target_port,
            cidr_ipv4=self._args.vpc_cidr,
            opts=pulumi.ResourceOptions(parent=self),
        )
        return group

    def _forward(self) -> list[aws.lb.ListenerDefaultActionArgs]:
        return [aws.lb.ListenerDefaultActionArgs(type="forward", target_group_arn=self.target_group.arn)]

    def _create_listener(
        self, port: int, protocol: str, actions: list[aws.lb.ListenerDefaultActionArgs], **extra: Any
    ) -> aws.lb.Listener:
        return aws.lb.Listener(
            f"{self._name}-{protocol.lower()}",
            load_balancer_arn=self.lb.arn,
            port=port,
            protocol=protocol,
            default_actions=actions,
            opts=pulumi.ResourceOptions(parent=self),
            **extra,
        )

    def _create_certificate(self, zone_id: str) -> pulumi.Output[str]:
        """Request a certificate, create its validation record in the zone and wait for ACM to issue it."""
        child = pulumi.ResourceOptions(parent=self)
        certificate = aws.acm.Certificate(
            f"{self._name}-cert", domain_name=str(self._args.domain_name), validation_method="DNS", opts=child
        )
        # One name on the certificate, so exactly one validation option: its record is known at plan time and is
        # created here, not inside an apply.
        option = certificate.domain_validation_options[0]
        record = aws.route53.Record(
            f"{self._name}-cert-validation-record",
            zone_id=zone_id,
            name=option.resource_record_name,
            type=option.resource_record_type,
            records=[option.resource_record_value],
            ttl=300,
            allow_overwrite=True,
            opts=child,
        )
        self.certificate_validation = pulumi.Output.all(record.name, record.type, option.resource_record_value).apply(
            lambda v: [{"name": v[0], "type": v[1], "value": v[2]}]
        )
        validation = aws.acm.CertificateValidation(
            f"{self._name}-cert-validation",
            certificate_arn=certificate.arn,
            validation_record_fqdns=[record.fqdn],
            opts=child,
        )
        aws.route53.Record(
            f"{self._name}-alias",
            zone_id=zone_id,
            name=str(self._args.domain_name),
            type="A",
            aliases=[
                aws.route53.RecordAliasArgs(name=self.lb.dns_name, zone_id=self.lb.zone_id, evaluate_target_health=True)
            ],
            opts=child,
        )
        return validation.certificate_arn

    def _create_https_listeners(self) -> aws.lb.Listener:
        a = self._args
        certificate_arn = self._create_certificate(a.hosted_zone_id) if a.hosted_zone_id else a.certificate_arn
        redirect = aws.lb.ListenerDefaultActionArgs(
            type="redirect",
            redirect=aws.lb.ListenerDefaultActionRedirectArgs(port="443", protocol="HTTPS", status_code="HTTP_301"),
        )
        self._create_listener(80, "HTTP", [redirect])
        return self._create_listener(
            443, "HTTPS", self._forward(), ssl_policy=TLS_POLICY, certificate_arn=certificate_arn
        )
