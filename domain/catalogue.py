"""What a government may purchase (政府购买社会救助服务目录), and what it may not."""

from __future__ import annotations

from enum import Enum

from domain.errors import InvalidValue, NotPurchasable


class WorkKind(Enum):
    TRANSACTIONAL = "transactional"  # 事务性工作
    SERVICE = "service"  # 服务性工作


class WorkItem(Enum):
    """Purchasable work items, from the two catalogues of the notice."""

    # Transactional work in handling dibao, tekun and temporary assistance.
    TARGET_SCREENING = "target_screening"  # 对象排查
    HOUSEHOLD_INVESTIGATION = "household_investigation"  # 家计调查 (means test)
    BUSINESS_TRAINING = "business_training"  # 业务培训
    POLICY_PUBLICITY = "policy_publicity"  # 政策宣传
    PERFORMANCE_EVALUATION = "performance_evaluation"  # 绩效评价
    INFORMATION_MANAGEMENT = "information_management"  # 信息管理
    # Service work for relief recipients.
    CARE_AND_NURSING = "care_and_nursing"  # 照料护理
    REHABILITATION_TRAINING = "rehabilitation_training"  # 康复训练
    ESCORT_TO_HOSPITAL = "escort_to_hospital"  # 送医陪护
    SOCIAL_INTEGRATION = "social_integration"  # 社会融入
    CAPACITY_BUILDING = "capacity_building"  # 能力提升
    PSYCHOLOGICAL_COUNSELLING = "psychological_counselling"  # 心理疏导
    RESOURCE_LINKING = "resource_linking"  # 资源链接

    @property
    def kind(self) -> WorkKind:
        return WorkKind.TRANSACTIONAL if self in _TRANSACTIONAL else WorkKind.SERVICE


_TRANSACTIONAL = frozenset(
    {
        WorkItem.TARGET_SCREENING,
        WorkItem.HOUSEHOLD_INVESTIGATION,
        WorkItem.BUSINESS_TRAINING,
        WorkItem.POLICY_PUBLICITY,
        WorkItem.PERFORMANCE_EVALUATION,
        WorkItem.INFORMATION_MANAGEMENT,
    }
)

#: Functions the government must perform itself; refused by name when put into a contract.
NON_PURCHASABLE: dict[str, str] = {
    "eligibility_decision": "deciding eligibility (approve, reject, suspend or terminate a case)",
    "benefit_payment": "paying relief benefits",
    "administrative_management": "administrative management the government must do itself",
}


def parse_work_item(value: str, *, field: str = "work_items") -> WorkItem:
    if value in NON_PURCHASABLE:
        raise NotPurchasable(
            f"{value!r} ({NON_PURCHASABLE[value]}) is a government function and may not be "
            "purchased from a contractor",
            field=field,
        )
    try:
        return WorkItem(value)
    except ValueError:
        allowed = ", ".join(item.value for item in WorkItem)
        raise InvalidValue(
            f"unknown work item {value!r}; the catalogue has {allowed}", field=field
        ) from None
