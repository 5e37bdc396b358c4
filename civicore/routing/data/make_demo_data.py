"""Writes reports-demo.csv: citizen-style problem reports in Vietnamese and English for the 12 demo
categories, to train the demo routing model.

Each report combines hand-written phrasings (how people open, describe the problem, say where and
since when, and close) and then, as people type on phones, sometimes drops the diacritics, uses
chat abbreviations or makes a typo. Seeded, so every run writes the same file:

    python civicore/routing/data/make_demo_data.py [--per-language 100] [--output PATH]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import random
import unicodedata
from pathlib import Path

SEED = 311
HERE = Path(__file__).resolve().parent

# --- where and when ------------------------------------------------------------------------------

VI_PLACES = [
    "trước nhà số 12 Lê Lợi",
    "ở ngõ 45 Nguyễn Trãi",
    "đầu hẻm 23 đường 3 Tháng 2",
    "gần chợ An Bình",
    "trước cổng trường tiểu học An Bình",
    "ngã tư Lê Lợi - Hai Bà Trưng",
    "khu phố 3, xã An Bình",
    "ấp 2 xã An Bình",
    "đoạn gần cây xăng Petrolimex trên Quốc lộ 1",
    "cạnh trạm y tế xã",
    "hẻm 7 Trần Hưng Đạo",
    "chân cầu Bình Lợi",
    "trước UBND xã An Bình",
    "đường Nguyễn Văn Cừ, đoạn gần nhà thờ",
    "tổ 5, khu dân cư Hòa Bình",
    "số 88 Phan Đình Phùng",
    "chung cư An Bình, block B",
    "gần công viên Thống Nhất",
    "đầu ngõ 102 Hoàng Hoa Thám",
    "cổng sau bệnh viện huyện",
]
VI_WHEN = [
    "từ tối qua",
    "mấy hôm nay",
    "cả tuần nay rồi",
    "từ sáng nay",
    "hơn một tháng nay",
    "từ hôm mưa to",
    "đêm qua",
    "từ thứ hai tới giờ",
    "lâu lắm rồi",
    "vừa mới đây",
]
VI_OPENERS = [
    "",
    "",
    "Xin phản ánh:",
    "Kính gửi UBND xã,",
    "Cho em hỏi,",
    "Alo,",
    "Mọi người ơi,",
    "Tôi là người dân khu phố 3, xin báo:",
    "Báo cáo cơ quan chức năng:",
    "Nhờ các anh chị xử lý giúp:",
    "Phản ánh hiện trường:",
    "Chào anh chị,",
]
VI_CLOSERS = [
    "",
    "",
    "Mong cơ quan chức năng xử lý sớm.",
    "Đề nghị xử lý gấp!",
    "Cảm ơn ạ.",
    "Bà con rất bức xúc.",
    "Nguy hiểm lắm, mong được khắc phục.",
    "Đã báo mấy lần mà chưa thấy ai xuống.",
    "Nhờ xem giúp với ạ.",
    "Ai có trách nhiệm thì xuống xem giúp.",
    "Xin cảm ơn!",
]

EN_PLACES = [
    "outside 12 Le Loi Street",
    "in alley 45 off Nguyen Trai",
    "at the corner of Hai Ba Trung and Le Loi",
    "near An Binh market",
    "in front of the primary school",
    "on Highway 1 near the petrol station",
    "next to the commune health station",
    "by the Binh Loi bridge",
    "outside the commune office",
    "on Nguyen Van Cu road near the church",
    "at 88 Phan Dinh Phung",
    "at block B of the An Binh apartments",
    "next to Thong Nhat park",
    "at the entrance of lane 102 Hoang Hoa Tham",
    "behind the district hospital",
    "on my street",
    "in front of my house",
    "at the bus stop on Tran Hung Dao",
]
EN_WHEN = [
    "since last night",
    "for a few days now",
    "for over a week",
    "since this morning",
    "for more than a month",
    "since the big storm",
    "last night",
    "since Monday",
    "for ages",
    "just now",
]
EN_OPENERS = [
    "",
    "",
    "Hi,",
    "Hello,",
    "I would like to report that",
    "Reporting a problem:",
    "Dear city office,",
    "Not sure who to tell but",
    "Please help,",
    "FYI",
    "Urgent:",
]
EN_CLOSERS = [
    "",
    "",
    "Please fix it asap.",
    "Thanks.",
    "Can someone come and look?",
    "It is dangerous.",
    "I reported this before and nothing happened.",
    "Residents are really annoyed.",
    "Please send someone.",
    "Thank you!",
]

# --- what: several ways of saying each thing ---------------------------------------------------
# {place} and {when} are filled in; a phrasing without them gets them added around it sometimes.

VI: dict[str, list[str]] = {
    "streetlight": [
        "đèn đường {place} bị hỏng {when}, tối om",
        "cột đèn chiếu sáng {place} không sáng",
        "bóng đèn đường bị cháy, cả đoạn đường tối thui",
        "đèn đường chập chờn lúc sáng lúc tắt {when}",
        "đèn đường {place} sáng cả ban ngày, lãng phí điện",
        "khu này không có đèn đường, tối đi rất sợ",
        "dãy đèn chiếu sáng {place} tắt hết {when}",
        "đèn cao áp bị vỡ chụp, bóng rơi xuống đường",
        "trụ đèn đường bị nghiêng sắp đổ {place}",
        "đèn đường hư {when}, buổi tối trộm cắp nhiều",
        "đường tối quá vì đèn chiếu sáng không hoạt động",
        "đèn hẻm bị tắt {when}, đi làm về khuya rất nguy hiểm",
        "dây điện của cột đèn đường bị hở, đèn không lên",
        "tủ điện chiếu sáng {place} bị hỏng, cả khu mất đèn đường",
    ],
    "road_damage": [
        "ổ gà to giữa đường {place}",
        "mặt đường bị sụt lún {place} {when}",
        "đường {place} bị bong tróc, toàn ổ voi ổ gà",
        "có hố sâu giữa đường, xe máy sập bánh liên tục",
        "đường nứt toác sau trận mưa, rất nguy hiểm",
        "mặt đường bị lún thành vũng, đi xe rất xóc",
        "nắp hố ga bị lún sâu so với mặt đường {place}",
        "đường vừa đào lên làm ống xong không trả lại mặt bằng, toàn đá dăm",
        "ổ gà {place} làm mấy người té xe rồi",
        "đường xuống cấp nghiêm trọng {when}, lồi lõm khắp nơi",
        "mặt đường bê tông bị vỡ thành từng mảng",
        "cầu bê tông {place} bị lở mặt, lộ cả sắt",
        "đường đất bị xói thành rãnh sâu sau mưa",
        "hố trên đường {place} mỗi ngày một to ra",
    ],
    "traffic_signal": [
        "đèn giao thông {place} bị hỏng {when}",
        "đèn tín hiệu ở ngã tư không hoạt động, xe cộ lộn xộn",
        "đèn xanh đèn đỏ {place} chỉ nhấp nháy vàng",
        "đèn đỏ bị tắt, chỉ còn đèn xanh một chiều",
        "cột đèn tín hiệu bị xe tông nghiêng {place}",
        "đèn giao thông bật xanh cả hai hướng cùng lúc, suýt tai nạn",
        "đồng hồ đếm ngược của đèn tín hiệu bị hỏng",
        "đèn xanh quá ngắn, xe kẹt dài {place}",
        "đèn tín hiệu cho người đi bộ không sáng {place}",
        "ngã tư mất đèn giao thông {when}, không ai điều tiết",
        "đèn báo giao thông bị cây che khuất không nhìn thấy",
        "đèn tín hiệu giao thông bị mất điện {when}",
    ],
    "waste": [
        "rác {place} không ai thu gom {when}",
        "xe rác không đến lấy rác {when}, bốc mùi hôi thối",
        "bãi rác tự phát {place}, ruồi nhặng bu đầy",
        "người ta đổ trộm xà bần và rác thải {place}",
        "thùng rác công cộng đầy tràn ra đường",
        "rác thải sinh hoạt chất đống {place}",
        "có người vứt túi rác xuống mương {place}",
        "điểm tập kết rác {place} để quá lâu, mùi kinh khủng",
        "rác tràn ra vỉa hè sau ngày chợ",
        "xác nệm, tủ cũ bị vứt bỏ giữa đường {place}",
        "thu gom rác không đúng giờ, rác để qua đêm chó bới tung",
        "đốt rác {place} khói bay vào nhà dân",
        "công nhân môi trường lâu rồi không quét đường {place}",
    ],
    "animals": [
        "có xác chó chết {place} {when}, bốc mùi",
        "xác mèo chết giữa đường chưa ai dọn",
        "chó thả rông {place} cắn người",
        "đàn chó hoang {place} sủa đuổi học sinh",
        "chuột chết nằm đầy {place}",
        "chó không rọ mõm chạy ngoài đường, trẻ con sợ",
        "con rắn bò vào khu dân cư {place}",
        "xác gà vịt chết bị vứt xuống kênh {place}",
        "trâu bò thả rông trên đường gây nguy hiểm",
        "chó lạc nằm ở {place} {when}, có vẻ bị thương",
        "có tổ ong vò vẽ to trên cây {place}",
        "xác heo chết trôi dạt ven sông",
        "chó nhà ai thả ra đường phóng uế bừa bãi",
    ],
    "flooding": [
        "đường {place} ngập sâu sau mưa",
        "mưa xuống là ngập tới đầu gối {place}",
        "cống thoát nước bị tắc, nước không rút được",
        "miệng cống {place} bị rác lấp kín",
        "nước ngập tràn vào nhà dân {when}",
        "ngập úng kéo dài {when}, xe chết máy hàng loạt",
        "hố ga bị nghẹt, nước thải trào lên mặt đường",
        "mương thoát nước {place} bị bồi lấp, mưa là ngập",
        "triều cường làm ngập cả khu {place}",
        "nước đọng lâu ngày bốc mùi, muỗi nhiều",
        "nắp cống bị mất, nước xoáy rất nguy hiểm khi ngập",
        "đường thành sông mỗi khi mưa lớn",
        "cống bị tắc {when}, nước thải đen ngòm chảy ra đường",
    ],
    "water_leak": [
        "vỡ ống nước {place}, nước phun lên mặt đường",
        "ống nước sạch bị bể {when}, nước chảy lênh láng",
        "đường ống cấp nước bị rò rỉ {place}",
        "nhà tôi mất nước {when} do vỡ đường ống",
        "nước máy chảy lãng phí từ dưới lòng đường",
        "đồng hồ nước bị xì, nước chảy suốt ngày đêm",
        "công trình đào đường làm vỡ ống nước {place}",
        "ống cấp nước chính bị nứt, áp lực nước yếu cả khu",
        "van nước ở vỉa hè bị hỏng, nước tràn ra",
        "nước sạch rỉ ra từ khe nứt mặt đường {place} {when}",
        "vòi nước công cộng bị gãy, nước xả liên tục",
        "bể ống nước {place}, cả xóm không có nước dùng",
    ],
    "trees": [
        "cây xanh {place} bị gãy đổ chắn ngang đường",
        "cành cây lớn sắp gãy treo lơ lửng {place}",
        "cây bị bật gốc sau bão {when}",
        "cây cổ thụ {place} mục ruỗng, sợ đổ vào nhà",
        "nhánh cây đè lên dây điện {place}",
        "cây nghiêng hẳn ra đường, mưa gió rất nguy hiểm",
        "cây ngã đè lên xe máy {place}",
        "cành cây che khuất biển báo, cần cắt tỉa",
        "gốc cây bị mối ăn rỗng, có thể đổ bất cứ lúc nào",
        "cây đổ sau trận giông đêm qua chưa ai dọn",
        "cây xanh mọc lấn ra lòng đường {place}, cần tỉa",
        "rễ cây trồi lên làm bể gạch lối đi, cây có dấu hiệu nghiêng",
    ],
    "illegal_parking": [
        "ô tô đỗ chắn cổng nhà tôi {when}",
        "xe tải đậu trái phép {place}",
        "đỗ xe dưới lòng đường gây ùn tắc {place}",
        "xe hơi đậu hai bên đường, xe cứu thương không qua được",
        "có chiếc xe bỏ không {place} {when}, không ai lấy",
        "xe đậu chắn lối thoát hiểm chung cư",
        "taxi đỗ tràn lan đón khách {place}",
        "xe container đậu qua đêm trong khu dân cư",
        "ô tô đậu trên lối đi dành cho người khuyết tật",
        "xe máy đậu kín cả lối vào chợ",
        "đậu xe ngay vạch dành cho người đi bộ {place}",
        "xe khách dừng đỗ bắt khách sai quy định {place}",
    ],
    "noise": [
        "hàng xóm hát karaoke ầm ĩ đến nửa đêm",
        "quán nhậu {place} mở nhạc to {when}",
        "công trình xây dựng làm ồn cả đêm, không ngủ được",
        "loa kẹo kéo hát cả ngày {place}",
        "tiếng ồn từ xưởng cơ khí {place} rất lớn",
        "xe độ pô nẹt bô inh ỏi lúc khuya",
        "quán bar {place} mở nhạc đinh tai nhức óc",
        "đám cưới mở loa công suất lớn tới 12 giờ đêm",
        "máy khoan bê tông hoạt động từ 5 giờ sáng",
        "tiếng chó sủa và nhạc ồn ào hàng đêm {place}",
        "karaoke {place} hát {when}, người già trẻ nhỏ không ngủ được",
        "quán cà phê mở nhạc quá lớn, ảnh hưởng cả khu",
    ],
    "sidewalk": [
        "hàng quán lấn chiếm vỉa hè {place}, người đi bộ phải xuống lòng đường",
        "bán hàng rong chiếm hết vỉa hè",
        "nhà {place} xây lấn ra vỉa hè",
        "quán cà phê bày bàn ghế ra hết vỉa hè",
        "vật liệu xây dựng để tràn ra lòng đường {place}",
        "dựng mái che, bục bệ lấn chiếm vỉa hè",
        "chợ tự phát họp dưới lòng đường {place} gây kẹt xe",
        "cửa hàng để xe máy kín vỉa hè, không có chỗ đi",
        "rửa xe tràn ra vỉa hè, nước chảy lênh láng",
        "người dân dựng rạp đám chiếm hết lòng đường {when}",
        "quầy hàng tạm lấn chiếm lề đường {place}",
        "trông giữ xe trái phép trên vỉa hè {place}",
    ],
    "posters": [
        "quảng cáo rao vặt dán đầy cột điện {place}",
        "vẽ bậy lên tường nhà tôi {when}",
        "tờ rơi cho vay tiền dán khắp nơi",
        "số điện thoại khoan cắt bê tông sơn đầy tường",
        "có người phun sơn graffiti lên tường trường học",
        "băng rôn quảng cáo treo trái phép {place}",
        "biển quảng cáo dựng trên vỉa hè che khuất tầm nhìn",
        "dán quảng cáo lên trạm xe buýt {place}",
        "bẻ khóa, thông cống, dán quảng cáo chi chít {place}",
        "tường rào bị viết vẽ bậy nhem nhuốc",
        "quảng cáo tín dụng đen dán lên cửa nhà dân",
        "tờ rơi quảng cáo rải đầy đường {place}",
    ],
}

EN: dict[str, list[str]] = {
    "streetlight": [
        "the street light {place} is out {when}",
        "streetlight not working, the whole road is pitch dark",
        "street lamp keeps flickering on and off {when}",
        "lights on the street stay on all day, wasting power",
        "no street lighting {place}, feels unsafe walking at night",
        "the lamp post {place} is leaning and looks like it will fall",
        "broken bulb on the street light, glass on the ground",
        "all the street lamps {place} went dark {when}",
        "dark road because the lamp post light is dead",
        "light pole cover is open and wires are exposed, lamp is off",
        "street light outage on our lane {when}",
        "the lamp at the end of the alley has been off {when}",
    ],
    "road_damage": [
        "big pothole {place}",
        "the road surface has sunk {place} {when}",
        "huge crater in the road, motorbikes keep hitting it",
        "road is cracked and crumbling after the rain",
        "manhole cover sits way below the road level {place}",
        "after digging up the road for pipes they never resurfaced it",
        "pothole {place} already made two people fall off their bikes",
        "the road is falling apart, bumps and holes everywhere",
        "broken concrete slabs on the road {place}",
        "deep rut in the dirt road after the floods",
        "the hole in the road {place} gets bigger every day",
        "asphalt is peeling off {place} {when}",
    ],
    "traffic_signal": [
        "traffic light {place} is broken {when}",
        "the traffic signals at the junction are dead, chaos",
        "traffic lights only flashing yellow {place}",
        "red light is out, only green works one way",
        "traffic signal pole knocked over by a truck {place}",
        "lights show green in both directions at once, nearly crashed",
        "the countdown timer on the traffic light is broken",
        "pedestrian crossing signal is not working {place}",
        "green phase is way too short, huge queue {place}",
        "intersection has had no working signals {when}",
        "tree branches hide the traffic light so drivers cannot see it",
        "signal lights lost power at the crossroads {when}",
    ],
    "waste": [
        "rubbish {place} has not been collected {when}",
        "garbage truck did not come {when}, it stinks",
        "people dumping trash illegally {place}",
        "the public bin is overflowing onto the street",
        "piles of household waste {place}",
        "someone threw bags of rubbish into the canal {place}",
        "waste collection point {place} is left for days, awful smell",
        "an old mattress and furniture dumped in the road {place}",
        "trash left overnight and dogs tore the bags open",
        "someone is burning garbage {place}, smoke everywhere",
        "construction debris dumped on the empty lot {place}",
        "litter everywhere after the market, nobody cleaned",
    ],
    "animals": [
        "dead dog {place} {when}, smells terrible",
        "a dead cat in the middle of the road",
        "stray dogs {place} are biting people",
        "pack of strays chasing kids on the way to school",
        "dead rats all over {place}",
        "unleashed dog without a muzzle running in the street",
        "a snake got into the houses {place}",
        "dead chickens dumped into the canal {place}",
        "cows wandering on the road causing danger",
        "injured stray dog lying {place} {when}",
        "big hornet nest in a tree {place}",
        "dead animal floating by the river bank",
    ],
    "flooding": [
        "road {place} is flooded after the rain",
        "knee deep water {place} every time it rains",
        "the drain is blocked, water will not go down",
        "storm drain {place} is clogged with rubbish",
        "flood water coming into homes {when}",
        "flooding {when}, bikes are stalling in the water",
        "sewer is backed up and dirty water is coming up on the road",
        "the drainage ditch {place} is silted up",
        "high tide flooded the whole area {place}",
        "standing water for days, mosquitoes everywhere",
        "missing drain cover, dangerous whirlpool when flooded",
        "street turns into a river whenever it pours",
    ],
    "water_leak": [
        "burst water pipe {place}, water shooting up",
        "water main broke {when}, water everywhere",
        "leaking water pipe {place}",
        "no water at home {when} because of a broken pipe",
        "clean water bubbling up from under the road",
        "water meter is leaking day and night",
        "roadworks cracked the water pipe {place}",
        "the main supply line is cracked, low pressure on the whole street",
        "valve on the pavement is broken and water is gushing",
        "tap water seeping through a crack in the road {place} {when}",
        "public water tap snapped off, running nonstop",
        "pipe burst {place}, the neighbourhood has no water",
    ],
    "trees": [
        "fallen tree {place} blocking the road",
        "a big branch hanging loose {place}, about to drop",
        "tree uprooted by the storm {when}",
        "old tree {place} is rotten, afraid it will fall on the house",
        "branches resting on the power lines {place}",
        "tree leaning badly over the street, dangerous in wind",
        "a tree fell on parked motorbikes {place}",
        "branches cover the road sign, needs trimming",
        "termites hollowed out the trunk, could come down any time",
        "tree down after last night's storm and no one cleared it",
        "overgrown tree sticking out into the road {place}",
        "roots lifting the path and the tree has started to lean",
    ],
    "illegal_parking": [
        "car parked blocking my gate {when}",
        "truck parked illegally {place}",
        "cars parked on the road causing a jam {place}",
        "cars on both sides, an ambulance could not get through",
        "abandoned car {place} {when}",
        "a car is blocking the fire exit of the apartment block",
        "taxis parked everywhere picking up passengers {place}",
        "container truck parked overnight in a residential street",
        "car parked in the disabled bay",
        "motorbikes parked across the market entrance",
        "vehicle parked on the zebra crossing {place}",
        "bus stopping and parking where it is not allowed {place}",
    ],
    "noise": [
        "neighbours singing karaoke loudly until midnight",
        "the bar {place} plays music very loud {when}",
        "construction noise all night, cannot sleep",
        "portable speaker blasting all day {place}",
        "loud noise from the metal workshop {place}",
        "modified exhausts revving late at night",
        "nightclub {place} is deafening",
        "wedding party with huge speakers until midnight",
        "concrete drilling starting at 5am",
        "karaoke {place} {when}, old people and babies cannot sleep",
        "coffee shop music so loud the whole block hears it",
        "constant loud music every night {place}",
    ],
    "sidewalk": [
        "shops taking over the pavement {place}, we have to walk in the road",
        "street vendors occupying the whole sidewalk",
        "the house {place} was built out onto the sidewalk",
        "cafe put tables and chairs all over the pavement",
        "building materials piled into the road {place}",
        "awnings and steps built out over the sidewalk",
        "informal market set up in the road {place}, traffic jam",
        "shop parks motorbikes on the whole pavement, no room to walk",
        "car wash spilling onto the sidewalk",
        "funeral tent blocking the whole street {when}",
        "stalls encroaching on the roadside {place}",
        "illegal motorbike parking business on the sidewalk {place}",
    ],
    "posters": [
        "ads stuck all over the electricity poles {place}",
        "graffiti sprayed on my wall {when}",
        "loan shark flyers pasted everywhere",
        "phone numbers for drilling services painted on the walls",
        "someone spray painted the school wall",
        "illegal banners hung {place}",
        "billboard on the pavement blocking the view",
        "posters stuck on the bus shelter {place}",
        "stickers for lock picking and drain cleaning all over {place}",
        "vandals scribbled all over the fence",
        "illegal loan ads glued to people's doors",
        "leaflets scattered all over the street {place}",
    ],
}

# Chat abbreviations people use on phones, applied to text without diacritics.
VI_SLANG = {
    "không": "ko",
    "khong": "k",
    "được": "dc",
    "gì": "j",
    "người": "ng",
    "quá": "wa",
    "rồi": "r",
    "với": "vs",
    "biết": "bit",
    "anh chị": "ac",
    "mọi người": "mn",
}
EN_SLANG = {
    "please": "pls",
    "you": "u",
    "thanks": "thx",
    "because": "cuz",
    "tonight": "tonite",
    "people": "ppl",
}


def strip_diacritics(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))


def typo(text: str, rng: random.Random) -> str:
    """One slip of the thumb: a swapped, dropped or doubled letter."""
    positions = [i for i, c in enumerate(text[:-1]) if c.isalpha() and text[i + 1].isalpha()]
    if not positions:
        return text
    i = rng.choice(positions)
    kind = rng.choice(("swap", "drop", "double"))
    if kind == "swap":
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    if kind == "drop":
        return text[:i] + text[i + 1 :]
    return text[:i] + text[i] + text[i:]


def _fill(template: str, places: list[str], whens: list[str], rng: random.Random) -> str:
    text = template.format(place=rng.choice(places), when=rng.choice(whens))
    if "{place}" not in template and rng.random() < 0.4:
        text = f"{text} {rng.choice(places)}"
    if "{when}" not in template and rng.random() < 0.3:
        text = f"{text} {rng.choice(whens)}"
    return text


def vi_report(label: str, rng: random.Random) -> str:
    core = _fill(rng.choice(VI[label]), VI_PLACES, VI_WHEN, rng)
    if rng.random() < 0.25:  # two sentences about the same problem
        second = _fill(rng.choice(VI[label]), VI_PLACES, VI_WHEN, rng)
        core = f"{core}. {second[0].upper()}{second[1:]}"
    parts = [
        rng.choice(VI_OPENERS),
        core[0].upper() + core[1:] + rng.choice((".", "", "!", "!!", "...")),
        rng.choice(VI_CLOSERS),
    ]
    text = " ".join(p for p in parts if p)
    roll = rng.random()
    if roll < 0.35:  # typed on a phone without a Vietnamese keyboard
        text = strip_diacritics(text)
        if rng.random() < 0.5:
            text = text.lower()
    if rng.random() < 0.3:
        for word, short in VI_SLANG.items():
            if rng.random() < 0.6:
                text = text.replace(word, short)
    for _ in range(rng.choice((0, 0, 0, 1, 1, 2))):
        text = typo(text, rng)
    return text


def en_report(label: str, rng: random.Random) -> str:
    core = _fill(rng.choice(EN[label]), EN_PLACES, EN_WHEN, rng)
    if rng.random() < 0.2:
        second = _fill(rng.choice(EN[label]), EN_PLACES, EN_WHEN, rng)
        core = f"{core}. {second[0].upper()}{second[1:]}"
    opener = rng.choice(EN_OPENERS)
    if opener and not opener.endswith(("that", "but", "FYI")):
        core = core[0].upper() + core[1:]
    parts = [opener, core + rng.choice((".", "", "!", "...")), rng.choice(EN_CLOSERS)]
    text = " ".join(p for p in parts if p)
    if rng.random() < 0.3:
        text = text.lower()
    if rng.random() < 0.25:
        for word, short in EN_SLANG.items():
            text = text.replace(word, short)
    for _ in range(rng.choice((0, 0, 0, 1, 1, 2))):
        text = typo(text, rng)
    return text


def generate(per_language: int = 100, seed: int = SEED) -> list[dict[str, str]]:
    rng = random.Random(seed)  # noqa: S311 - reproducible data, not secrets
    start = dt.datetime(2025, 1, 1, 6, 0, tzinfo=dt.UTC)
    rows = []
    for label in VI:
        for language, make in (("vi", vi_report), ("en", en_report)):
            seen: set[str] = set()
            while len(seen) < per_language:
                text = make(label, rng)
                if text in seen:
                    continue
                seen.add(text)
                when = start + dt.timedelta(minutes=rng.randrange(0, 365 * 24 * 60))
                rows.append({"text": text, "label": label, "language": language, "time": when.isoformat()})
    rows.sort(key=lambda r: r["time"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-language", type=int, default=100)
    parser.add_argument("--output", type=Path, default=HERE / "reports-demo.csv")
    args = parser.parse_args()
    rows = generate(args.per_language)
    with args.output.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=["text", "label", "language", "time"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {len(rows)} rows to {args.output}")


if __name__ == "__main__":
    main()
