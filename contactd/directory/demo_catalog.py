"""The raw material of the demo directory: names, regions, products, carriers, and the
wording of logistics events. Only constants; :mod:`contactd.directory.demo` uses them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from contactd.directory.models import MemberLevel, OrderStatus

CST = timezone(timedelta(hours=8), "CST")  # China Standard Time, the shop's own clock
# "now" of the demo world: every timestamp is relative to it, so a seed always gives the
# same data (the fixed order O2026112300000001 was placed that morning)
DEMO_NOW = datetime(2026, 11, 23, 16, 0, tzinfo=CST)

LEVEL_WEIGHTS: dict[MemberLevel, int] = {
    MemberLevel.regular: 55,
    MemberLevel.silver: 25,
    MemberLevel.gold: 14,
    MemberLevel.diamond: 6,
}
# how often each status comes up, and how long ago (minutes) such an order was placed
STATUS_WEIGHTS: dict[OrderStatus, int] = {
    OrderStatus.pending_payment: 5,
    OrderStatus.paid: 5,
    OrderStatus.picking: 5,
    OrderStatus.shipped: 10,
    OrderStatus.delivered: 10,
    OrderStatus.completed: 35,
    OrderStatus.cancelled: 12,
    OrderStatus.refunding: 6,
    OrderStatus.refunded: 12,
}
DAY = 1440
ORDER_AGE_MINUTES: dict[OrderStatus, tuple[int, int]] = {
    OrderStatus.pending_payment: (2, 28),  # unpaid orders are cancelled after 30 minutes
    OrderStatus.paid: (40, 20 * 60),
    OrderStatus.picking: (6 * 60, 40 * 60),
    OrderStatus.shipped: (30 * 60, 96 * 60),
    OrderStatus.delivered: (5 * DAY, 12 * DAY),
    OrderStatus.completed: (14 * DAY, 180 * DAY),
    OrderStatus.cancelled: (1 * DAY, 120 * DAY),
    OrderStatus.refunding: (6 * DAY, 20 * DAY),
    OrderStatus.refunded: (8 * DAY, 150 * DAY),
}

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯"
    "邓曹彭曾萧田董潘袁蔡蒋余于杜叶程魏苏吕丁任沈姚卢"
)
MALE_GIVEN = (
    "伟", "强", "磊", "军", "洋", "勇", "杰", "涛", "明", "超",
    "浩然", "子轩", "宇航", "俊杰", "建国", "志强", "晨阳", "文博", "一鸣", "天佑",
)  # fmt: skip
FEMALE_GIVEN = (
    "芳", "娜", "敏", "静", "丽", "艳", "婷", "雪", "欣怡", "梓涵",
    "诗琪", "雨桐", "思雨", "晓燕", "佳琪", "静怡", "美玲", "慧敏", "若曦", "可欣",
)  # fmt: skip

MOBILE_PREFIXES = (
    "130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152",
    "155", "156", "157", "158", "159", "166", "173", "175", "176", "177", "178", "180",
    "181", "182", "183", "185", "186", "187", "188", "189", "191", "198", "199",
)  # fmt: skip

TAGS = ("老客", "高价值", "价格敏感", "易退货", "投诉敏感", "宝妈", "学生", "企业采购", "夜间活跃")

# (province, city, districts)
REGIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("上海市", "上海市", ("浦东新区", "徐汇区", "闵行区", "静安区")),
    ("北京市", "北京市", ("朝阳区", "海淀区", "丰台区", "东城区")),
    ("广东省", "广州市", ("天河区", "越秀区", "番禺区")),
    ("广东省", "深圳市", ("南山区", "福田区", "宝安区", "龙岗区")),
    ("浙江省", "杭州市", ("西湖区", "余杭区", "滨江区")),
    ("江苏省", "南京市", ("鼓楼区", "江宁区", "玄武区")),
    ("江苏省", "苏州市", ("姑苏区", "吴中区", "相城区")),
    ("四川省", "成都市", ("武侯区", "锦江区", "青羊区")),
    ("湖北省", "武汉市", ("洪山区", "江汉区", "武昌区")),
    ("陕西省", "西安市", ("雁塔区", "碑林区", "未央区")),
    ("山东省", "青岛市", ("市南区", "崂山区", "黄岛区")),
    ("福建省", "厦门市", ("思明区", "湖里区", "集美区")),
    ("湖南省", "长沙市", ("岳麓区", "天心区", "开福区")),
    ("重庆市", "重庆市", ("渝中区", "江北区", "渝北区")),
    ("天津市", "天津市", ("和平区", "南开区", "河西区")),
    ("河南省", "郑州市", ("金水区", "二七区", "中原区")),
)
STREETS = ("人民路", "解放路", "中山路", "建设路", "学府路", "滨江大道", "科技路", "长江路")
COMMUNITIES = ("阳光花园", "锦绣家园", "翠湖苑", "金地名苑", "书香门第", "桂花园", "星河湾")
# cities the shop's warehouses ship from
WAREHOUSE_CITIES = ("杭州市", "广州市", "上海市", "北京市", "武汉市")

# (sku, name, price in fen, category)
PRODUCTS: tuple[tuple[str, str, int, str], ...] = (
    ("SKU10001", "防摔硅胶手机壳", 2990, "数码配件"),
    ("SKU10002", "主动降噪蓝牙耳机", 19900, "数码"),
    ("SKU10003", "316不锈钢保温杯 500ml", 8900, "家居"),
    ("SKU10004", "轻量缓震跑步运动鞋", 39900, "鞋靴"),
    ("SKU10005", "法式碎花连衣裙", 25900, "女装"),
    ("SKU10006", "氨基酸控油洗发水 750ml", 5990, "个护"),
    ("SKU10007", "每日坚果礼盒 750g", 12800, "食品"),
    ("SKU10008", "20000mAh 快充充电宝", 9900, "数码配件"),
    ("SKU10009", "87键机械键盘", 34900, "电脑外设"),
    ("SKU10010", "白鸭绒轻薄羽绒服", 69900, "男装"),
    ("SKU10011", "玻尿酸保湿面霜 50g", 28800, "美妆"),
    ("SKU10012", "婴儿纸尿裤 L码 62片", 13900, "母婴"),
    ("SKU10013", "全价成猫粮 2kg", 15900, "宠物"),
    ("SKU10014", "智能电饭煲 4L", 39900, "家电"),
    ("SKU10015", "无油空气炸锅 5.5L", 29900, "家电"),
    ("SKU10016", "弹力修身牛仔裤", 19900, "男装"),
    ("SKU10017", "明前龙井茶叶礼盒 250g", 26800, "食品"),
    ("SKU10018", "Type-C 编织数据线 1m", 1990, "数码配件"),
    ("SKU10019", "运动智能手表", 129900, "数码"),
    ("SKU10020", "20寸万向轮拉杆行李箱", 49900, "箱包"),
    ("SKU10021", "纯棉四件套 1.8m", 32900, "家纺"),
    ("SKU10022", "有机纯牛奶 250ml×12盒", 6990, "食品"),
)

# (carrier, tracking-number prefix, digits after the prefix)
CARRIERS: tuple[tuple[str, str, int], ...] = (
    ("顺丰速运", "SF", 13),
    ("中通快递", "7", 13),
    ("京东物流", "JDV", 12),
    ("圆通速递", "YT", 13),
    ("韵达快递", "43", 13),
)
COURIERS = ("王", "李", "张", "刘", "陈", "赵", "周", "吴")

# the last logistics event of a parcel still on its way; {placeholders} filled by demo.py
IN_TRANSIT_EVENTS = (
    "【{origin}】{carrier} 已揽收，揽投员：{courier}师傅",
    "【{origin}】快件已从 {origin_hub}转运中心 发出，准备发往 {hub}转运中心",
    "【{city}】快件已到达 {hub}转运中心",
    "【{city}】快件正在派送中，派送员：{courier}师傅，请保持电话畅通",
)
DELIVERED_EVENTS = (
    "【{city}】快件已签收，签收人：本人。感谢使用{carrier}，期待再次为您服务",
    "【{city}】快件已由 {district}菜鸟驿站 代收，请及时取件",
    "【{city}】快件已签收，签收人：家人代收。感谢使用{carrier}",
)
RETURN_RECEIVED_EVENT = "【{origin}】退货快件已签收，商家已确认收货"
