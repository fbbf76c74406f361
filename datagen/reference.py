"""Reference data for the generator: cities and dealers, vehicle models, name pools."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CITIES", "MODELS", "City", "Model", "SURNAMES", "GIVEN_CHARS_MALE", "GIVEN_CHARS_FEMALE"]


@dataclass(frozen=True)
class City:
    province: str
    city: str
    districts: tuple[str, ...]
    region_code: str  # first six digits of a resident ID issued there
    dealer_prefix: str
    weight: float


CITIES = (
    City("广东省", "广州市", ("天河区", "越秀区", "海珠区", "白云区", "番禺区"), "440106", "GZ", 0.16),
    City("广东省", "深圳市", ("福田区", "南山区", "罗湖区", "宝安区", "龙岗区"), "440304", "SZ", 0.14),
    City("北京市", "北京市", ("朝阳区", "海淀区", "东城区", "西城区", "丰台区"), "110105", "BJ", 0.14),
    City("上海市", "上海市", ("浦东新区", "徐汇区", "静安区", "闵行区", "杨浦区"), "310104", "SH", 0.14),
    City("浙江省", "杭州市", ("西湖区", "上城区", "拱墅区", "滨江区", "余杭区"), "330106", "HZ", 0.09),
    City("江苏省", "南京市", ("鼓楼区", "玄武区", "秦淮区", "建邺区", "江宁区"), "320106", "NJ", 0.08),
    City("四川省", "成都市", ("武侯区", "锦江区", "青羊区", "金牛区", "成华区"), "510107", "CD", 0.09),
    City("湖北省", "武汉市", ("江汉区", "武昌区", "洪山区", "江岸区", "汉阳区"), "420103", "WH", 0.08),
    City("陕西省", "西安市", ("雁塔区", "碑林区", "莲湖区", "新城区", "未央区"), "610113", "XA", 0.08),
)


@dataclass(frozen=True)
class Model:
    brand: str
    name: str
    code: str  # five VIN descriptor characters
    price_low: int
    price_high: int
    weight: float


MODELS = (
    Model("Aurora", "A3", "AA3B1", 119_800, 159_800, 0.22),
    Model("Aurora", "A5", "AA5C2", 179_800, 239_800, 0.2),
    Model("Aurora", "A7", "AA7D3", 279_800, 379_800, 0.08),
    Model("Aurora", "X3", "SX3E4", 199_800, 259_800, 0.2),
    Model("Aurora", "X5", "SX5F5", 319_800, 449_800, 0.1),
    Model("Aurora", "M8", "MM8G6", 299_800, 399_800, 0.06),
    Model("Aurora EV", "Nova", "EN1H7", 149_800, 219_800, 0.14),
)

# Surnames with rough frequency weights: the common ones make common full names like 王伟.
SURNAMES = (
    ("王", 7.1), ("李", 7.0), ("张", 6.7), ("刘", 5.4), ("陈", 4.5), ("杨", 3.1), ("黄", 2.2),
    ("赵", 2.0), ("吴", 2.0), ("周", 1.9), ("徐", 1.5), ("孙", 1.5), ("马", 1.3), ("朱", 1.3),
    ("胡", 1.3), ("郭", 1.2), ("何", 1.2), ("高", 1.1), ("林", 1.1), ("罗", 0.9), ("郑", 0.9),
    ("梁", 0.8), ("谢", 0.7), ("宋", 0.6), ("唐", 0.6), ("许", 0.6), ("韩", 0.6), ("冯", 0.5),
    ("邓", 0.5), ("曹", 0.5), ("彭", 0.5), ("曾", 0.5), ("肖", 0.5), ("田", 0.4), ("董", 0.4),
    ("袁", 0.4), ("潘", 0.4), ("蒋", 0.4), ("蔡", 0.4), ("余", 0.4), ("杜", 0.4), ("叶", 0.4),
    ("程", 0.4), ("苏", 0.3), ("魏", 0.3), ("吕", 0.3), ("丁", 0.3), ("任", 0.3), ("沈", 0.3),
    ("姚", 0.3), ("卢", 0.3), ("钟", 0.3), ("谭", 0.3), ("陆", 0.3), ("汪", 0.3), ("欧阳", 0.1),
    ("单", 0.05), ("诸葛", 0.02),
)

GIVEN_CHARS_MALE = (
    "伟强磊军勇杰涛明超刚平辉鹏华飞鑫波斌宇浩凯健俊帆帅旭宁龙林峰建国志成家文斌晨阳"
    "维玮炜钧君斌彬滨健剑铭鸣宏泓洪杰捷鹏朋"
)
GIVEN_CHARS_FEMALE = (
    "芳娜敏静丽艳娟霞秀玲桂英红梅琳雪倩婷颖慧晶洁燕萍璐瑶佳欣怡悦蕾薇莉丹婧菁"
    "丽莉俪静晶婧芳方舫艳燕彦娟鹃萍苹洁婕"
)

COMPANY_WORDS = ("恒通", "华信", "鼎盛", "中联", "远航", "金桥", "瑞丰", "鸿达", "宏图", "天成", "泰和", "新锐")
COMPANY_TRADES = ("汽车贸易", "科技", "物流", "建设工程", "餐饮管理", "电子商务", "医药", "房地产开发")

LOST_REASONS = ("bought competitor", "price", "financing declined", "no longer interested", "delivery time")
FAILURE_CODES = ("E101", "E204", "B310", "P455", "S120", "C880", "T071")
COMPLAINT_TEXTS = (
    "车辆异响，多次维修未解决",
    "保养后发现漆面划痕",
    "销售承诺的赠品未兑现",
    "配件等待时间过长",
    "空调制冷效果差",
    "服务顾问态度不好，说了\"马上处理\"但没有回复",
    "发动机故障灯亮, 请尽快联系",
    "交车时间一再推迟",
)
SERVICE_ADVISORS = ("SA01", "SA02", "SA03", "SA04", "SA05", "SA06")
SALES_CONSULTANTS = ("SC01", "SC02", "SC03", "SC04", "SC05", "SC06", "SC07", "SC08")
