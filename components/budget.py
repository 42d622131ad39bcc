"""Cost budget: an AWS Budget on the month's cost that alerts the alarm topic."""

from __future__ import annotations

import dataclasses

import pulumi
import pulumi_aws as aws


@dataclasses.dataclass(frozen=True)
class CostBudgetArgs:
    """Inputs of :class:`CostBudget`."""

    monthly_limit_usd: int
    topic_arn: pulumi.Input[str]
    """SNS topic notified (its policy lets budgets.amazonaws.com publish)."""
    cost_allocation_tag: tuple[str, str]
    """``(key, value)`` of the user-defined cost-allocation tag that marks this stack's resources; the budget counts
    only their cost, not the whole account's."""
    email: str = ""
    """Also notified directly when not empty."""
    actual_threshold_percent: int = 80
    forecast_threshold_percent: int = 100

    def __post_init__(self) -> None:
        if self.monthly_limit_usd <= 0:
            raise ValueError("monthly_limit_usd must be positive")
        if not all(self.cost_allocation_tag):
            raise ValueError("cost_allocation_tag needs a key and a value (the stack's tag)")


class CostBudget(pulumi.ComponentResource):
    """A monthly COST budget over one stack's tagged resources, with actual and forecast notifications.

    Attributes:
        budget_name: The budget's name.
    """

    def __init__(self, name: str, args: CostBudgetArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("artwork-matcher:budget:CostBudget", name, None, opts)
        emails = [args.email] if args.email else []

        def notify(kind: str, threshold: int) -> aws.budgets.BudgetNotificationArgs:
            return aws.budgets.BudgetNotificationArgs(
                comparison_operator="GREATER_THAN",
                notification_type=kind,
                threshold=threshold,
                threshold_type="PERCENTAGE",
                subscriber_sns_topic_arns=[args.topic_arn],
                subscriber_email_addresses=emails,
            )

        self.budget = aws.budgets.Budget(
            f"{name}-monthly",
            name=name,
            budget_type="COST",
            limit_amount=str(args.monthly_limit_usd),
            limit_unit="USD",
            time_unit="MONTHLY",
            cost_filters=[
                aws.budgets.BudgetCostFilterArgs(
                    name="TagKeyValue", values=["user:{}${}".format(*args.cost_allocation_tag)]
                )
            ],
            notifications=[
                notify("ACTUAL", args.actual_threshold_percent),
                notify("FORECASTED", args.forecast_threshold_percent),
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.budget_name = self.budget.name
        self.register_outputs({"budget_name": self.budget_name})
