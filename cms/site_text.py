"""The text of the home page that `load_catalogue` creates (editors change it in Wagtail
afterwards; the loader never overwrites their work). The site's own words belong to cms, not to the catalogue."""

HOME_TEXT = {
    "title": {
        "en": "Emhana",
        "ru": "Emhana",
        "kk": "Emhana",
        "ky": "Emhana",
        "uz": "Emhana",
        "tg": "Emhana",
        "zh_hans": "Emhana"
    },
    "hero_title": {
        "en": "High-tech medical care in Kazakhstan",
        "ru": "Высокотехнологичная медицинская помощь в Казахстане",
        "kk": "Қазақстандағы жоғары технологиялық медициналық көмек",
        "ky": "Казакстандагы жогорку технологиялуу медициналык жардам",
        "uz": "Qozogʻistonda yuqori texnologiyali tibbiy yordam",
        "tg": "Ёрии тиббии баландтехнологӣ дар Қазоқистон",
        "zh_hans": "哈萨克斯坦高科技医疗服务"
    },
    "hero_intro": {
        "en": "Find the treatment, compare national centres and prices, send your records and book — in your language.",
        "ru": "Найдите лечение, сравните национальные центры и цены, отправьте документы и запишитесь — на вашем языке.",
        "kk": "Емді табыңыз, ұлттық орталықтар мен бағаларды салыстырыңыз, құжаттарды жіберіп, жазылыңыз — өз тіліңізде.",
        "ky": "Дарылоону табыңыз, улуттук борборлорду жана бааларды салыштырыңыз, документтерди жөнөтүп, жазылыңыз — өз тилиңизде.",
        "uz": "Davolanishni toping, milliy markazlar va narxlarni solishtiring, hujjatlarni yuboring va yoziling — oʻz tilingizda.",
        "tg": "Табобатро ёбед, марказҳои миллӣ ва нархҳоро муқоиса кунед, ҳуҷҷатҳоро фиристед ва сабт шавед — бо забони худ.",
        "zh_hans": "查找治疗项目，比较国家级医疗中心和价格，提交病历并预约——使用您的语言。"
    }
}
