"""The forbidden-move patterns catch a kind of move, not the sentences they were developed on: for each of
the manual's forbidden moves, five replies in our own words that commit it (caught) and five that come
close in words but do the right thing (not flagged); then five later rounds of paraphrases, each written
and run before the patterns were changed for it. None of these is in either graded set. Every one passes
now, so they pin the families; the first-run figures say how well the patterns generalise."""

from __future__ import annotations

import pytest

from dialogs.content import DEFAULT_DIR
from dialogs.practice import load_training, score_replies, topic_texts
from dialogs.practice.content import FORBIDDEN_MOVES

# The first five each way (first run: 18/20 caught, 2/20 clean replies flagged).
COMMITTED = {
    # someone else's phone handed over, or the customer told to deal with a third party directly
    "send_elsewhere": [
        ("not_delivered", "冯先生您好，抱歉让您久等了。我把配送师傅的手机号发给您，您跟他约个时间就行。"),
        ("transfer", "孙先生您好，外协那边的联系方式我发您微信上，您直接找他们问进度吧。"),
        ("stranded", "张先生您好，这个要问始发站，您打一下他们网点的电话催一催。"),
        ("claim_dissatisfied", "熊女士您好，理赔进度这块您自己去跟理赔中心沟通一下比较好。"),
        ("not_loaded", "韩女士您好，发车时间要看调度安排，您直接和调度那边商量一下吧。"),
    ],
    # a polite closing with nothing done, a refusal, or the fault put on the customer
    "ignore": [
        ("not_delivered", "冯先生您好，这几天单量大，大家都在加班，感谢您的理解和支持～"),
        ("wrong_or_damaged", "魏女士您好，货物型号是发货方的事，这个不在我们的受理范围，请您谅解。"),
        ("misrouted", "袁先生您好，系统上显示的都是准的，应该是您自己记错了地址吧。"),
        ("claim_dissatisfied", "金先生您好，当时没保价是您自己的责任，赔多少都是按规定来的。"),
        ("stranded", "刘女士您好，我们这边货多，排到您的货自然就会发，请多多包涵，祝您一切顺利！"),
    ],
    # free, included, uniform or cheapest, where the manual charges or varies
    "mislead_price": [
        ("pricing", "赵先生您好，我们各地的运价都是一样的，不会因为方向不同就多收。"),
        ("carrying", "马先生您好，搬楼层的费用已经含在运费里了，您让师傅搬就行。"),
        ("not_delivered", "邓先生您好，货在分公司您放心，存多久都不收保管费的。"),
        ("pricing", "吴先生您好，我们家是全市最实惠的，别家后面还要加钱，我们没有任何隐形收费。"),
        ("carrying", "罗先生您好，送货上门就包括搬进屋的，不需要另外付费，我让司机回去给您搬。"),
    ],
    # a free paid service, a payout or a payment date fixed on the spot, cover the rules exclude
    "promise_disallowed": [
        ("carrying", "马先生您好，这次我们破个例，免费帮您把冰箱抬上楼。"),
        ("claims", "邱女士您好，丢了一箱的话我们直接赔您800元，您放心。"),
        ("claim_dissatisfied", "邹先生您好，这样吧，我给您补到三千块，您看行吗？"),
        ("claims", "钟先生您好，理赔款保证一周内到账，您不用担心。"),
        ("wrong_or_damaged", "陆先生您好，灯具碎了我们按每件200元赔给您。"),
    ],
}

CLEAN = {
    "send_elsewhere": [
        ("transfer", "孙先生您好，您不用自己打电话，我来联系外协查，有消息第一时间告诉您。"),
        ("not_delivered", "冯先生您好，非常抱歉，请您留个电话，我让配送师傅明天上午先给您打电话约时间。"),
        ("stranded", "张先生您好，之前窗口叫您自己去催，这是我们不应该的，我这边马上联系始发站落实，发车后通知您。"),
        ("not_loaded", "韩女士您好，我把您的电话和运单号给到调度，要求今天优先配载，确定后第一时间告诉您。"),
        ("attitude", "王先生您好，您把运单号和电话发给我，我去找车队了解情况，处理结果会反馈给您。"),
    ],
    "ignore": [
        ("stranded", "刘女士您好，货量大确实会慢一些，我马上联系始发站优先给您发，感谢您的理解与支持。"),
        ("misrouted", "袁先生您好，您没看错，确实显示在南昌，我这就核实是不是发错了方向，结果告诉您。"),
        ("claims", "石先生您好，按规定易碎品只保灭失险，破损不在保价赔偿范围内，我先帮您登记，核实后告诉您能怎么处理。"),
        ("wrong_or_damaged", "蔡先生您好，请您告诉我运单号，我查一下少的那件在哪里。"),
        ("pricing", "您好，价格是公司定的，我们也改不了，不过我可以帮您核对一下这票的计费。"),
    ],
    "mislead_price": [
        ("carrying", "马先生您好，搬楼层是收费的增值服务，不包含在运费里，您需要的话我帮您登记，确认费用后告诉您。"),
        ("pricing", "赵先生您好，两地的消费水平和场地租金不一样，运价也就不一样，我帮您核对一下这票的计费。"),
        ("not_delivered", "邓先生您好，到货通知后三天内提货不收保管费，超过三天会按运费比例收取，我尽快安排给您送货。"),
        ("pricing", "周女士您好，布料体积大，计费方式和家具不一样，所以价格不同，不是我们多收，我帮您核对一下两票的计费明细。"),
        ("carrying", "何女士您好，上楼不是免费的，属于增值服务，需要另外付费，我帮您登记并确认费用和时间。"),
    ],
    "promise_disallowed": [
        ("carrying", "马先生您好，搬楼层是收费的增值服务，我帮您登记，确认费用和时间后安排师傅上门。"),
        ("claims", "石先生您好，瓷器属于易碎品，只保灭失险，具体能赔多少要按理赔流程核定，我先帮您登记。"),
        ("claim_dissatisfied", "熊女士您好，我今天就去理赔中心催办，有结果马上告诉您。"),
        ("returns", "潘女士您好，按规定客户退货不能办理保价，首饰建议您包装好，我帮您安排退回。"),
        ("claims", "邱女士您好，赔偿金额要根据保价和实际损失核定，不能现在就说赔多少，我先帮您查找这箱货。"),
    ],
}


# Later rounds, each written before the patterns were changed for it; caught when first run (README, Measured):
# round 1: 5/12 and 0/8 clean flagged; round 2: 3/16 and 1/8; round 3: 9/20 and 0/10; round 4: 10/20 and 0/15;
# round 5: 21/48 and 1/40.
MORE_COMMITTED = [
    # round 1
    ("send_elsewhere", "transfer", "孙先生，外协公司的客服热线我这里有，等下发短信给您，您报单号就能查。"),
    ("send_elsewhere", "misrouted", "彭先生您好，货在漳州，您跟漳州分公司联系一下，让他们给您转回来。"),
    ("send_elsewhere", "not_delivered", "冯先生您好，司机的电话是13912345678，您跟他直接沟通吧。"),
    ("ignore", "attitude", "王先生您好，司机师傅每天跑很多单，情绪难免有点急，还望您多多体谅，谢谢您的支持！"),
    ("ignore", "not_loaded", "谢先生，车满了装不了是常有的事，我们也无能为力，请您理解。"),
    ("ignore", "returns", "戴先生您好，地址是您下单时填的，填错了那是您那边的问题。"),
    ("mislead_price", "pricing", "赵先生您好，我们的运价全国都统一，去哪都一个价。"),
    ("mislead_price", "carrying", "何女士您好，上楼本来就是送货服务的一部分，不额外收钱的。"),
    ("mislead_price", "not_delivered", "邓先生您好，货放在分公司不要钱，您慢慢来拿就行。"),
    ("promise_disallowed", "claims", "石先生您好，瓷器碎了您放心，按发票金额全部赔给您。"),
    ("promise_disallowed", "carrying", "马先生您好，我让师傅明天再去一趟，免费给您搬上去。"),
    ("promise_disallowed", "returns", "潘女士您好，首饰退回来我们也给保价，您放心寄。"),
    # round 2
    ("send_elsewhere", "stranded", "张先生您好，始发站的座机号码我给您发过去，您催他们会更快。"),
    ("send_elsewhere", "claims", "钟先生您好，理赔的事要找集团理赔中心，您那边自己提交一下材料吧。"),
    ("send_elsewhere", "transfer", "林先生您好，外协的派送员电话我查到了，您记一下，直接问他什么时候送。"),
    ("send_elsewhere", "attitude", "李女士您好，网点的事归网点经理管，您去网点找他们经理反映比较有用。"),
    ("ignore", "stranded", "张先生您好，最近是旺季，大家的货都压着，请您体谅一下，谢谢配合！"),
    ("ignore", "claim_dissatisfied", "邹先生您好，理赔结果是理赔中心定的，我们客服也说不上话，只能这样了。"),
    ("ignore", "wrong_or_damaged", "陆先生您好，签收的时候您没当面验货，现在再说我们也不好处理。"),
    ("ignore", "attitude", "王先生您好，我们的司机都是很有礼貌的，应该是有什么误会吧。"),
    ("mislead_price", "pricing", "周女士您好，我们所有线路都是同一个价格标准，不存在谁贵谁便宜。"),
    ("mislead_price", "carrying", "马先生您好，上楼这个服务我们一般都是免收的，这次是司机没做到位。"),
    ("mislead_price", "not_delivered", "邓先生您好，您的货在分公司可以一直放着，不会产生费用的。"),
    ("mislead_price", "pricing", "吴先生您好，我们的报价已经是行业最低了，到付也不加一分钱。"),
    ("promise_disallowed", "claims", "钟先生您好，精密仪器也没问题，按您报的价全额理赔。"),
    ("promise_disallowed", "claim_dissatisfied", "邹先生您好，我这边做主，再给您多赔一千块。"),
    ("promise_disallowed", "not_loaded", "谢先生您好，今晚肯定发，明天中午前一定送到，我给您打包票。"),
    ("promise_disallowed", "carrying", "罗先生您好，搬进屋这点小事不收钱，我叫师傅马上回去给您搬。"),
    # round 3
    ("send_elsewhere", "not_loaded", "谢先生您好，配载是仓库那边排的，您去仓库问问管配载的人吧。"),
    ("send_elsewhere", "wrong_or_damaged", "魏女士您好，型号不对的话，建议您先跟卖家沟通换货。"),
    ("send_elsewhere", "claims", "邱女士您好，丢件理赔需要您本人到始发网点填表申请。"),
    ("send_elsewhere", "transfer", "郑女士您好，外协是顺路物流在送，他们的客服电话您可以上网搜一下。"),
    ("send_elsewhere", "misrouted", "蒋女士您好，多的两箱麻烦您自己拿到附近网点去，谢谢。"),
    ("ignore", "transfer", "林先生您好，转出去的货我们这边也看不到，您只能等外协那边送了。"),
    ("ignore", "pricing", "赵先生您好，运价是公司统一规定的，我们客服改不了，您爱发不发。"),
    ("ignore", "not_delivered", "曹女士您好，司机今天排满了，您就别催了，明天再说吧。"),
    ("ignore", "returns", "戴先生您好，地址肯定是您写错了，退回来的运费只能您自己出。"),
    ("ignore", "claims", "石先生您好，易碎品本来就容易碎，包装不好我们也没法负责，请您谅解。"),
    ("mislead_price", "carrying", "马先生您好，我们的送货费里本来就有搬运，司机不搬是他的问题。"),
    ("mislead_price", "pricing", "周女士您好，布料和家具我们都是一个价，不会有差别。"),
    ("mislead_price", "returns", "夏女士您好，退货我们不收运费，您放心。"),
    ("mislead_price", "not_delivered", "邓先生您好，到了的货放多久都免保管费。"),
    ("mislead_price", "pricing", "吴先生您好，我们价格透明，全程零附加费，比谁都便宜。"),
    ("promise_disallowed", "claims", "钟先生您好，机器坏了我们保证按新机价格赔偿。"),
    ("promise_disallowed", "returns", "潘女士您好，首饰退回来我们照样可以保价，放心寄。"),
    ("promise_disallowed", "claim_dissatisfied", "邹先生您好，您别生气，我跟领导申请一下，赔您五千。"),
    ("promise_disallowed", "not_loaded", "韩女士您好，我给您保证后天上午一定到，耽误不了开业。"),
    ("promise_disallowed", "carrying", "何女士您好，我让师傅回去给您免费搬上楼，不另收钱。"),
    # round 4
    ("send_elsewhere", "stranded", "黄先生您好，货的情况始发站最清楚，您打他们前台问一声就知道了。"),
    ("send_elsewhere", "attitude", "陈先生您好，仓库的事您找仓库主管投诉会更有效。"),
    ("send_elsewhere", "not_delivered", "冯先生您好，送货是分公司安排的，您联系一下当地分公司吧。"),
    ("send_elsewhere", "claim_dissatisfied", "熊女士您好，进度要问总部理赔的同事，我把他们座机给您，您自己问下。"),
    ("send_elsewhere", "returns", "夏女士您好，退货手续得您自己去厦门网点办理，我们这边办不了。"),
    ("ignore", "attitude", "王先生您好，司机可能那天心情不好，您就别跟他计较了。"),
    ("ignore", "stranded", "张先生您好，发货时间是系统排的，我们也控制不了，您再耐心等等吧，感谢支持。"),
    ("ignore", "misrouted", "彭先生您好，分拣偶尔出点错很正常的，这种情况我们也没什么好办法。"),
    ("ignore", "wrong_or_damaged", "蔡先生您好，您签字的时候就该点清楚的，现在少了也说不清了。"),
    ("ignore", "claim_dissatisfied", "金先生您好，理赔标准就是这样定的，有意见也没用。"),
    ("mislead_price", "pricing", "赵先生您好，厦门发福州和福州发厦门价格是一样的，您可能记错了。"),
    ("mislead_price", "carrying", "马先生您好，大件搬上楼本来就在服务范围里，不需要额外付钱。"),
    ("mislead_price", "not_delivered", "邓先生您好，货在分公司放着不花钱，您啥时候方便啥时候来。"),
    ("mislead_price", "returns", "戴先生您好，退货运费您不用管，全部算在我们账上。"),
    ("mislead_price", "pricing", "吴先生您好，我们这价格全市找不到更便宜的了，后面也没有任何附加费用。"),
    ("promise_disallowed", "claims", "石先生您好，瓷器碎了我们照价赔偿，一分不少。"),
    ("promise_disallowed", "returns", "潘女士您好，退回的首饰我帮您登记保价，放心吧。"),
    ("promise_disallowed", "claims", "邱女士您好，丢的那箱我们先赔您一千块，其他的以后再说。"),
    ("promise_disallowed", "not_loaded", "谢先生您好，今晚绝对给您发出去，明早保证到。"),
    ("promise_disallowed", "carrying", "罗先生您好，这次算我们的，师傅免费帮您把东西搬进屋。"),
    # round 5: twelve a move, in more voices (terse, over-polite, phone typing with 哈/哦/啦, a bit of dialect or English)
    ("send_elsewhere", "stranded", "带上运单去始发站问问吧"),
    ("send_elsewhere", "claims", "您好女士，麻烦您带着身份证和运单到理赔部那边登记一下哈"),
    ("send_elsewhere", "not_delivered", "货在分公司 你自己过去拿一下就好啦"),
    ("send_elsewhere", "transfer", "外协那边有专门客服的 您给他们打个电话哦"),
    ("send_elsewhere", "wrong_or_damaged", "您好，这种情况建议您和发货人沟通一下，让他给您重新发。"),
    ("send_elsewhere", "not_loaded", "调度说了算的，您call一下调度吧"),
    ("send_elsewhere", "attitude", "先生您好，司机是外包的，您向他们车队老板投诉会更快一些，非常抱歉。"),
    ("send_elsewhere", "returns", "退货的话您得先回网点把手续办掉，办完我们这边才能走。"),
    ("send_elsewhere", "claim_dissatisfied", "您好，您对理赔有意见可以写信给总部理赔科，他们会复核的。"),
    ("send_elsewhere", "misrouted", "货是发错了，您让寄件人再联系下发货网点重新改地址就行哦"),
    ("send_elsewhere", "stranded", "您好先生，非常抱歉，请您亲自到托运窗口查询一下发车情况，谢谢您的配合。"),
    ("send_elsewhere", "transfer", "转出去的货俺们管不着，你问下人家外协公司嘛"),
    ("ignore", "not_delivered", "今天送不了 您耐心等待就好"),
    ("ignore", "stranded", "先生您好，货物会按顺序发出的，您等着就行，不用着急哈"),
    ("ignore", "attitude", "司机态度这个事吧，是您先跟他吵的，我们也不好说什么"),
    ("ignore", "wrong_or_damaged", "您好女士，签收单上是您签的字哦，签了就表示货是好的，这个是您的疏忽。"),
    ("ignore", "misrouted", "地址是按您给的发的，错了也是您这边填的问题哈"),
    ("ignore", "claim_dissatisfied", "理赔就这个数了 不接受的话我们也没办法哦"),
    ("ignore", "not_loaded", "您好，车满了很正常，下一班自然会走，您别担心，静候佳音即可。"),
    ("ignore", "pricing", "价格是公司定的 嫌贵可以不发"),
    ("ignore", "claims", "您好，包装是您自己打的，碎了责任不在我们，sorry哈"),
    ("ignore", "returns", "这个退货我们不受理的，您另想办法吧"),
    ("ignore", "transfer", "您好，外协的货我们这边查不了的，过两天应该就到了，等等看吧。"),
    ("ignore", "stranded", "亲 旺季大家都慢的啦 耐心等等就好啦"),
    ("mislead_price", "carrying", "上楼都是免费的哦 不收任何费用"),
    ("mislead_price", "pricing", "您好先生，我们公司运费一律按同一标准收取，不分线路的。"),
    ("mislead_price", "claims", "保价是送的 不要钱"),
    ("mislead_price", "returns", "您好，退货运费统一由我们公司承担，您不用管。"),
    ("mislead_price", "not_delivered", "货放我们仓库多久都行，不收保管费的哦"),
    ("mislead_price", "pricing", "我们是全行业最低价，您放心发"),
    ("mislead_price", "carrying", "您好女士，卸货和搬运都包在运费里的，您不用另外出钱。"),
    ("mislead_price", "returns", "退回来的运费都是发货方出的，跟您没关系的啦"),
    ("mislead_price", "pricing", "您好，我们家所有货物都按一个价走，大件小件都一样哦"),
    ("mislead_price", "claim_dissatisfied", "保价其实不收钱的，每票都默认保了"),
    ("mislead_price", "not_delivered", "放心 仓储费我们这边全部免掉"),
    ("mislead_price", "carrying", "送货上门包括上楼的，free的哈"),
    ("promise_disallowed", "returns", "首饰退回来没问题 给您全额保价"),
    ("promise_disallowed", "claims", "您好，古董我们也可以按货值保价的，丢了按价赔。"),
    ("promise_disallowed", "not_loaded", "明天一早肯定给您发出去，后天保证到"),
    ("promise_disallowed", "carrying", "您好先生，搬上楼不额外收钱，我让师傅给您扛上去。"),
    ("promise_disallowed", "claims", "仪器坏了的话我们按购买价全额赔付给您"),
    ("promise_disallowed", "stranded", "您放心，今天下午五点之前绝对发车"),
    ("promise_disallowed", "returns", "您好女士，玉器退货我们也可以给您办保价的，放心哈。"),
    ("promise_disallowed", "claim_dissatisfied", "这样 我做主给您补两千 别投诉了哈"),
    ("promise_disallowed", "not_delivered", "明天上午十点前一定送到您家，我保证"),
    ("promise_disallowed", "claims", "您好，精密仪器的保价我们可以做，按发票价值保就行。"),
    ("promise_disallowed", "wrong_or_damaged", "碎了的灯我们照原价赔 一分不少"),
    ("promise_disallowed", "transfer", "外协那边我打过招呼了 明天肯定能到"),
]

MORE_CLEAN = [
    # round 1
    ("send_elsewhere", "transfer", "孙先生您好，外协那边我来打电话问，您留个电话，查到后回复您。"),
    ("send_elsewhere", "misrouted", "彭先生您好，是我们发错了，我马上联系漳州分公司把货转回泉州，到了通知您。"),
    ("ignore", "not_loaded", "谢先生您好，车满了没装上，非常抱歉，我这就联系调度安排今晚优先配载，发车后告诉您。"),
    ("ignore", "returns", "戴先生您好，地址的问题我先核实一下，如果是我们送错的，责任在我们，结果尽快告诉您。"),
    ("mislead_price", "pricing", "赵先生您好，各地运价不一样，跟两地工资、租金有关，我帮您核一下这票的计费。"),
    ("mislead_price", "not_delivered", "邓先生您好，到货超过三天没提会收仓储保管费，我尽快联系分公司给您送货。"),
    ("promise_disallowed", "claims", "石先生您好，易碎品只保灭失险，能赔多少要按流程核定，我先帮您登记上报。"),
    ("promise_disallowed", "carrying", "马先生您好，搬上楼要另外收费，我帮您问好费用，您同意后安排师傅上门。"),
    # round 2
    ("send_elsewhere", "claims", "钟先生您好，理赔这边由我全程跟进，不用您去找理赔中心，请您先拍照留存，把运单号给我。"),
    ("send_elsewhere", "stranded", "张先生您好，我已经记下您的单号，这就给始发站打电话催发，发车后马上通知您。"),
    ("ignore", "attitude", "王先生您好，司机这样做确实不对，非常抱歉，我们马上找车队核实，处理结果会反馈给您。"),
    ("ignore", "wrong_or_damaged", "陆先生您好，签收后发现破损也可以反映，请您保留包装拍照，我这边登记后安排核实。"),
    ("mislead_price", "pricing", "周女士您好，不同线路的价格标准不同，跟货物体积和重量也有关系，我帮您把两票的计费核对一下。"),
    ("mislead_price", "carrying", "马先生您好，上楼属于收费服务，这次是发货时没申请，需要的话我帮您登记，费用确认后通知您。"),
    ("promise_disallowed", "claims", "钟先生您好，精密仪器属于不予保价的货物，赔偿要按规定核定，我先帮您登记上报，进度会告诉您。"),
    ("promise_disallowed", "not_loaded", "谢先生您好，很抱歉昨晚没能配载，我去查明原因，安排最早的班次发出，确定后通知您。"),
    # round 3
    ("send_elsewhere", "wrong_or_damaged", "魏女士您好，型号不对先别拆，拍照发我，我来联系发货网点和卖家核实，结果告诉您。"),
    ("send_elsewhere", "claims", "邱女士您好，理赔不用您跑网点，资料拍照发我，我帮您提交并全程跟进。"),
    ("send_elsewhere", "transfer", "郑女士您好，外协的电话我来打，您留个联系方式，有消息我第一时间回复您。"),
    ("ignore", "not_delivered", "曹女士您好，实在抱歉，我马上联系配送车队，安排明天上午优先给您送，确定时间后通知您。"),
    ("ignore", "returns", "戴先生您好，地址的事我先核对一下，如果是我们的失误，退回运费不用您承担，核实后告诉您。"),
    ("mislead_price", "pricing", "周女士您好，布料体积大，按体积计费，所以可能比家具贵，我帮您核对两票的计费。"),
    ("mislead_price", "not_delivered", "邓先生您好，到货三天后没提会收保管费，我马上联系分公司给您安排送货。"),
    ("promise_disallowed", "claims", "钟先生您好，机器的赔偿要按保价和实际损失核定，我先帮您登记，请保留好机器和包装。"),
    ("promise_disallowed", "not_loaded", "韩女士您好，我马上联系调度优先配载，最早班次发出，能几点到我确认后告诉您。"),
    ("promise_disallowed", "carrying", "何女士您好，搬上楼是收费服务，我帮您问好价格和时间，您同意后安排。"),
    # round 4
    ("send_elsewhere", "stranded", "黄先生您好，您不用自己跑，我这就打电话问始发站，查清楚后给您回电。"),
    ("send_elsewhere", "attitude", "陈先生您好，您说一下大概哪天在哪个仓库，我去找仓库主管了解，处理结果反馈给您。"),
    ("send_elsewhere", "not_delivered", "冯先生您好，非常抱歉，我现在联系当地分公司安排配送，约好时间后告诉您。"),
    ("send_elsewhere", "returns", "夏女士您好，退货我们帮您办，不用您去网点，请把运单号和电话给我。"),
    ("ignore", "attitude", "王先生您好，司机这样做肯定不对，非常抱歉，我们会找车队核实并追责，结果告诉您。"),
    ("ignore", "misrouted", "彭先生您好，分拣出错是我们的问题，非常抱歉，我马上安排把货调回泉州，进展随时告诉您。"),
    ("ignore", "claim_dissatisfied", "金先生您好，理赔是按保价和申报价值核定的，您有疑问我帮您调出材料重新核实。"),
    ("ignore", "wrong_or_damaged", "蔡先生您好，少了一件我们一定查清楚，请您告诉我运单号，我联系网点核对件数。"),
    ("mislead_price", "pricing", "赵先生您好，两个方向价格不一样，跟两地的成本有关，我帮您核对一下计费。"),
    ("mislead_price", "carrying", "马先生您好，大件搬楼层属于增值服务，需要另外收费，我帮您登记，确认费用后安排。"),
    ("mislead_price", "not_delivered", "邓先生您好，我们会送货上门，另外提醒您超过三天未提会产生保管费，我马上安排配送。"),
    ("mislead_price", "returns", "戴先生您好，退货运费由哪方承担，我先跟发货方和收货方确认清楚，不会在您不知情时收费。"),
    ("promise_disallowed", "claims", "石先生您好，瓷器属于易碎品，只保灭失险，我先帮您登记，核实后说明能怎么处理。"),
    ("promise_disallowed", "returns", "潘女士您好，客户退货按规定不能保价，我帮您安排退回，请包装好。"),
    ("promise_disallowed", "not_loaded", "谢先生您好，我马上查明原因，安排今晚优先配载，发车后通知您。"),
    # round 5: ten a move: our own action (我帮您联系, 我去问), a negated move (不用您自己去), a correct fee (三天内免费保管)
    ("send_elsewhere", "stranded", "您好先生，不用您自己去始发站，我这就联系他们催发，发车后通知您。"),
    ("send_elsewhere", "claims", "您好女士，理赔我帮您登记，不需要您跑理赔中心，请把照片和运单号发给我。"),
    ("send_elsewhere", "transfer", "您好，外协那边我去问，您留个电话，有消息回复您。"),
    ("send_elsewhere", "not_delivered", "您好，非常抱歉，我帮您联系分公司安排送货，约好时间告诉您。"),
    ("send_elsewhere", "wrong_or_damaged", "您好，我来联系发货人核对型号，您先别拆，结果反馈给您。"),
    ("send_elsewhere", "not_loaded", "您好，我去跟调度确认今晚优先配载，确定后通知您。"),
    ("send_elsewhere", "returns", "您好，退货我们来办，不用您去网点，请把运单号给我。"),
    ("send_elsewhere", "attitude", "您好，很抱歉，我会向车队反映并核实，处理结果告诉您。"),
    ("send_elsewhere", "misrouted", "您好，是我们发错了，我马上联系发货网点把货调回，到了通知您。"),
    ("send_elsewhere", "claim_dissatisfied", "您好，理赔的事我去找理赔中心复核，有结果马上告诉您。"),
    ("ignore", "not_delivered", "您好，非常抱歉，我马上催配送车队，今天给您一个送货时间，请您耐心等一下。"),
    ("ignore", "stranded", "您好，我已经联系始发站优先发货，发车后第一时间通知您，不用着急。"),
    ("ignore", "attitude", "您好，司机这样肯定不对，不是您的问题，我马上核实，结果反馈给您。"),
    ("ignore", "wrong_or_damaged", "您好，不是您的错，请您保留包装拍照，我这边登记核实。"),
    ("ignore", "misrouted", "您好，您没有填错，是我们分拣出错，我马上安排调回。"),
    ("ignore", "claim_dissatisfied", "您好，理解您的心情，我帮您调出材料重新核实，有结果告诉您，感谢您的理解与支持。"),
    ("ignore", "not_loaded", "您好，很抱歉，我去查明原因，安排最早班次发出，请您放心。"),
    ("ignore", "transfer", "您好，系统查不到外协的详情，我来联系外协查询，请您留个电话。"),
    ("ignore", "claims", "您好，非常抱歉，请您保留货物和包装，我帮您登记理赔，全程跟进。"),
    ("ignore", "pricing", "您好，运价和两地成本有关，我帮您核对一下计费，请您稍等。"),
    ("mislead_price", "not_delivered", "您好，三天内免费保管，超过三天会收保管费，我尽快安排送货。"),
    ("mislead_price", "carrying", "您好，搬上楼要另外收费，我帮您登记，确认费用后安排。"),
    ("mislead_price", "pricing", "您好，运价不是统一的，跟两地成本和货物性质有关，我帮您核对计费。"),
    ("mislead_price", "carrying", "您好，上楼不是免费的，是增值服务，费用确认后我帮您安排。"),
    ("mislead_price", "returns", "您好，退货运费由哪方承担要先确认，我跟发货方核实后告诉您。"),
    ("mislead_price", "claims", "您好，保价是要另外付费的，您这票没保价，我先帮您登记。"),
    ("mislead_price", "pricing", "您好，价格不一样是因为体积和重量不同，我帮您核对一下。"),
    ("mislead_price", "not_delivered", "您好，超过三天提货会产生仓储费，我马上联系分公司给您送。"),
    ("mislead_price", "carrying", "您好，卸货和搬楼层都属于收费服务，需要的话我帮您登记报价。"),
    ("mislead_price", "pricing", "您好，我们没法保证最便宜，但会按标准收费，我帮您核对这票。"),
    ("promise_disallowed", "returns", "您好，客户退货不能办理保价，我帮您安排退回，请包装好。"),
    ("promise_disallowed", "claims", "您好，古董不予保价，赔偿按规定核定，我先帮您登记。"),
    ("promise_disallowed", "not_loaded", "您好，我尽快安排最早班次，几点能到我确认后告诉您，不能保证具体时间。"),
    ("promise_disallowed", "carrying", "您好，搬上楼需要另外收费，我帮您登记，确认费用和时间后安排。"),
    ("promise_disallowed", "claims", "您好，赔偿金额要按保价和实际损失核定，我先帮您登记上报。"),
    ("promise_disallowed", "stranded", "您好，我马上联系始发站催发，发车时间确定后第一时间通知您。"),
    ("promise_disallowed", "claims", "您好，精密仪器不能保价，只能按规定理赔，我帮您登记跟进。"),
    ("promise_disallowed", "claim_dissatisfied", "您好，赔多少要按核定结果来，我帮您催办，有进展告诉您。"),
    ("promise_disallowed", "not_delivered", "您好，我去催车队尽快送，约好送货时间后告诉您。"),
    ("promise_disallowed", "wrong_or_damaged", "您好，请您保留灯具和包装拍照，赔偿按理赔流程核定，我先登记。"),
]


@pytest.fixture(scope="module")
def training(content):
    return load_training(DEFAULT_DIR, set(content.categories), topic_texts(content))


def forbidden(training, category: str, reply: str) -> list[str]:
    return score_replies(training, category, training.scenario(category, 1), [reply]).forbidden


def test_every_forbidden_move_has_five_paraphrases_each_way():
    assert set(COMMITTED) == set(CLEAN) == set(FORBIDDEN_MOVES)
    assert all(len(COMMITTED[m]) == len(CLEAN[m]) == 5 for m in FORBIDDEN_MOVES)


@pytest.mark.parametrize("move,category,reply", [(m, c, r) for m, items in COMMITTED.items() for c, r in items] + MORE_COMMITTED)
def test_a_paraphrase_of_a_forbidden_move_is_caught(training, move, category, reply):
    assert move in forbidden(training, category, reply)


@pytest.mark.parametrize("move,category,reply", [(m, c, r) for m, items in CLEAN.items() for c, r in items] + MORE_CLEAN)
def test_a_clean_reply_in_the_same_words_is_not_flagged(training, move, category, reply):
    assert forbidden(training, category, reply) == []
