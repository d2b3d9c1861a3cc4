"""Name pools of the synthetic caseloads (no real person's data).

Each pool is a block of lines ``Variant|Variant|... = native`` ordered from the most to the
least common. The first variant is the usual Latin transliteration, the others are spellings
met in registration records (what duplicate detection must see through). The native form,
when given, is in the script a record of that caseload may carry: Perso-Arabic (Dari or
Persian orthography for Afghans and Iranians, Arabic for Iraqis, Urdu for Pakistanis), Tamil,
or Myanmar script for Burmese names.
"""
from __future__ import annotations

#: one pool entry: (Latin variants, native-script form or None)
NameEntry = tuple[tuple[str, ...], str | None]


def parse_pool(text: str) -> tuple[NameEntry, ...]:
    entries: list[NameEntry] = []
    for raw in text.strip().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        latin, _, native = line.partition("=")
        variants = tuple(v.strip() for v in latin.split("|") if v.strip())
        if not variants:
            raise ValueError(f"empty name entry: {raw!r}")
        entries.append((variants, native.strip() or None))
    return tuple(entries)


# --- Rohingya (Latin only; personal second names rather than family names) -----------------
ROHINGYA_MALE = parse_pool("""
Mohammed|Mohammad|Muhammad|Mohamed|Md
Nur|Noor|Nour
Abdul|Abdool|Abdal
Rashid|Rasheed|Rashed
Hussain|Hossain|Hussein|Husain|Hosen
Kalam|Kalaam
Salim|Saleem|Selim
Karim|Kareem|Korim
Rafiq|Rafique|Rafik
Jamal|Zamal
Anwar|Anowar|Anuwar|Anwer
Shafi|Shofi|Safi
Yusuf|Yousuf|Eusuf|Yousof
Ismail|Ismael|Esmail
Zakir|Jakir|Zakeer
Faisal|Foysal|Faysal
Sultan|Sultaan|Sulthan
Ayub|Ayoub|Aiyub
Enayat|Inayat|Enayet
Hamid|Hamed|Hameed
Abul|Abu|Abol
Kabir|Kobir
Sadek|Sadiq|Sadique
Harun|Haroon|Haroun
Jubair|Zubair|Jobayer|Jubayer
Amir|Ameer|Omir
Nurul|Norul
Dil Mohammed|Dilmohammed|Dil Mohamed
""")

ROHINGYA_FEMALE = parse_pool("""
Rashida|Rasheda|Roshida
Nur|Noor
Hasina|Hasena|Haseena
Rahima|Rohima|Raheema
Fatema|Fatima|Fatuma|Fotema
Shamima|Samima|Shameema
Jannat|Jonnat|Zannat
Ayesha|Aysha|Aisha|Ayasha
Khadiza|Khadija|Kadiza|Khodiza
Sabekun Nahar|Sabekunnahar|Sabekun
Minara|Monara|Minnara
Tahera|Tahira|Taheera
Hamida|Hamidah|Hameeda
Sanjida|Sonjida|Sanzida
Rabeya|Rabia|Rabiya
Senuwara|Senuara|Sanuwara
Setara|Sitara|Sotara
Jannat Ara|Jannatara
Asma|Osma|Asmaa
Rokeya|Rukiya|Rukaiya
Morjina|Marjina|Morzina
Rozina|Rojina|Rozeena
Kulsuma|Kulsum|Kolsuma
""")

ROHINGYA_SECOND_MALE = parse_pool("""
Hussain|Hossain|Hussein|Hosen
Alam|Alom|Allam
Ullah|Ulla|Ulah
Islam|Eslam|Islaam
Rahman|Rohman|Rahaman|Rehman
Ahmed|Ahmad|Ahamed
Hassan|Hasan|Hasson
Kabir|Kobir
Amin|Ameen|Amen
Haque|Hoque|Hoq|Huq
Uddin|Udin|Uddeen
Miah|Mia|Miya
Shah|Sha
Ali|Aly
Karim|Korim
Zaman|Jaman|Zamman
Sultan|Sultaan
Salam|Salaam
""")

ROHINGYA_SECOND_FEMALE = parse_pool("""
Begum|Begom|Bagum|Begam
Khatun|Khatoon|Katun|Khaton
Bibi|Bibee|Beebi
Akter|Akhter|Akhtar|Aktar
Nesa|Nessa|Nisa
Jahan|Jhan|Jahaan
Khanam|Khanom
""")

# Burmese names (no family names: the second element is part of the personal name).
BURMESE_MALE = parse_pool("""
Kyaw|Kyau|Chaw = ကျော်
Aung|Aong = အောင်
Maung|Mg|Mong = မောင်
Zaw|Zo = ဇော်
Min|Minn = မင်း
Thein|Thien|Thain = သိန်း
Win|Winn = ဝင်း
Htun|Tun|Tunn = ထွန်း
Soe|Soei|So = စိုး
Naing|Naiing = နိုင်
Than|Thann = သန်း
Hla|Hlaa = လှ
""")

BURMESE_FEMALE = parse_pool("""
Khin|Khinn = ခင်
Mya|Myaa = မြ
Aye|Aee = အေး
San|Sann = စန်း
Nu|Nue = နု
Hnin|Nhin = နှင်း
Su|Suu = စု
Wai|Way = ဝေ
Phyu|Phyoo = ဖြူ
""")

BURMESE_SECOND = parse_pool("""
Min|Minn = မင်း
Naing|Naiing = နိုင်
Oo|U = ဦး
Htet|Het = ထက်
Lwin|Lwinn = လွင်
Win|Winn = ဝင်း
Soe|So = စိုး
Zaw|Zo = ဇော်
Thu|Thoo = သူ
Kyi|Kyee|Chi = ကြည်
Thein|Thien = သိန်း
Htun|Tun = ထွန်း
Aung|Aong = အောင်
""")

# --- Afghan: Hazara (Dari orthography) -------------------------------------------------------
HAZARA_MALE = parse_pool("""
Mohammad|Muhammad|Mohammed|Mohamad = محمد
Ali = علی
Hussain|Hossain|Hussein|Husain|Hossein = حسین
Reza|Raza = رضا
Abbas = عباس
Mahdi|Mehdi = مهدی
Jawad|Javad = جواد
Sajjad|Sajad = سجاد
Qasim|Ghasem|Qasem|Kasim = قاسم
Ibrahim|Ebrahim = ابراهیم
Zakir|Zaker = ذاکر
Hamid|Hameed = حمید
Nasir|Naser|Nasser = ناصر
Yasin|Yaseen = یاسین
Murtaza|Mortaza|Morteza = مرتضی
Mustafa|Mostafa = مصطفی
Sakhi = سخی
Nabi = نبی
Karim|Kareem = کریم
Jafar|Jaafar|Jafer = جعفر
Akbar = اکبر
Ismail|Esmail|Ismael = اسماعیل
Ahmad|Ahmed = احمد
Asghar|Asqar = اصغر
Baqir|Baqer|Bagher = باقر
Hadi = هادی
Taqi|Taghi = تقی
""")

HAZARA_FEMALE = parse_pool("""
Fatima|Fatema|Fatimah = فاطمه
Zahra|Zehra = زهرا
Masooma|Masuma|Masoma|Masoumeh = معصومه
Maryam|Mariam|Maryem = مریم
Sakina|Sakeena|Sakineh = سکینه
Zainab|Zeinab|Zaynab = زینب
Khadija|Khadijah|Khadijeh = خدیجه
Marzia|Marziya|Marziyeh = مرضیه
Shakila|Shakeela = شکیلا
Nargis|Narges = نرگس
Ruqia|Roqia|Roqaya|Ruqaya = رقیه
Farzana|Farzaneh = فرزانه
Gulnaz|Golnaz = گلناز
Parwana|Parwane|Parvaneh = پروانه
Latifa|Lateefa = لطیفه
Sharifa|Sharefa = شریفه
Hakima|Hakeema = حکیمه
Tahira|Tahera = طاهره
Rahila|Raheela = راحله
Shukria|Shukriya = شکریه
""")

HAZARA_FAMILY = parse_pool("""
Hussaini|Hosseini|Husaini|Husseini = حسینی
Rezaei|Rezaie|Rezayee|Rezai = رضایی
Mohammadi|Muhammadi = محمدی
Ahmadi = احمدی
Jafari|Jaffari|Jaafari = جعفری
Karimi = کریمی
Hazara = هزاره
Sultani|Soltani = سلطانی
Akbari = اکبری
Rahimi = رحیمی
Haidari|Heidari|Heydari = حیدری
Yousufi|Yousefi|Yusufi = یوسفی
Naseri|Nasiri = ناصری
Qasimi|Ghasemi|Qasemi = قاسمی
Sharifi = شریفی
Amiri = امیری
Ibrahimi|Ebrahimi = ابراهیمی
Changezi|Changizi = چنگیزی
Behsudi|Behsoodi = بهسودی
Jaghori|Jaghuri = جاغوری
Nazari = نظری
Alizada|Alizadeh|Alizade = علیزاده
Hashimi|Hashemi = هاشمی
Rasuli|Rasooli = رسولی
Sadiqi|Sadeqi = صدیقی
""")

# --- Afghan: Pashtun (Dari orthography, as on bilingual documents) ----------------------------
PASHTUN_MALE = parse_pool("""
Mohammad|Muhammad|Mohammed = محمد
Ahmad|Ahmed = احمد
Abdullah|Abdulla|Abdollah = عبدالله
Gul|Gull = گل
Wali|Vali = ولی
Noor|Nur = نور
Habib|Habeeb = حبیب
Naveed|Navid = نوید
Jamal = جمال
Bilal = بلال
Sher|Shir = شیر
Rahim|Raheem = رحیم
Farid|Fareed = فرید
Tariq|Tareq|Tarik = طارق
Nasrullah|Nasrulla = نصرالله
Asadullah|Asadulla = اسدالله
Ajmal = اجمل
Zalmai|Zalmay = زلمی
Wahid|Waheed = وحید
Zahir|Zaher = ظاهر
Mirwais|Mirvais = میرویس
Hamid|Hameed = حمید
Shafiq|Shafeeq = شفیق
Khalid|Khaled = خالد
""")

PASHTUN_FEMALE = parse_pool("""
Malalai|Malalay = ملالی
Gulalai|Gulalay = گلالی
Zarghuna|Zarghona = زرغونه
Palwasha|Palwashay = پلوشه
Shabana = شبانه
Fatima|Fatema = فاطمه
Maryam|Mariam = مریم
Khadija|Khadijah = خدیجه
Mahjabin|Mahjabeen = مهجبین
Nazia|Naziya = نازیه
Sadia|Saadia = سعدیه
Zarmina|Zarmeena = زرمینه
Roshana|Roshanna = روشنا
Nazo = نازو
Pashtana = پشتانه
Gulnaz|Golnaz = گلناز
Hasina|Haseena = حسینه
""")

PASHTUN_FAMILY = parse_pool("""
Khan = خان
Popalzai|Popalzay = پوپلزی
Durrani|Durani = درانی
Yousafzai|Yousufzai|Yusufzai = یوسفزی
Mohmand|Momand = مهمند
Shinwari|Shinwary = شینواری
Ahmadzai|Ahmadzay = احمدزی
Safi = صافی
Wardak|Wardag = وردک
Zadran|Zadrani = زدران
Achakzai|Achekzai = اچکزی
Barakzai = بارکزی
Mangal = منگل
Niazi|Niyazi = نیازی
Stanikzai|Stanekzai = ستانکزی
Hotak = هوتک
Kakar|Kakkar = کاکر
Afridi|Afreedi = آفریدی
Ghilzai|Ghilzay = غلزی
Sherzad = شیرزاد
""")

# --- Afghan: Tajik (Dari orthography) --------------------------------------------------------
TAJIK_MALE = parse_pool("""
Mohammad|Muhammad|Mohammed = محمد
Ahmad|Ahmed = احمد
Farhad = فرهاد
Fawad|Fuad|Fawwad = فواد
Jamshid|Jamshed = جمشید
Khalid|Khaled = خالد
Masood|Massoud|Masud|Masoud = مسعود
Rahim|Raheem = رحیم
Sohrab|Suhrab = سهراب
Bashir|Basheer = بشیر
Nasir|Naser = ناصر
Omid|Umid = امید
Hamid|Hameed = حمید
Qais|Qays|Ghais = قیس
Rustam|Rostam = رستم
Shahram = شهرام
Yama = یما
Zubair|Zobair|Zubayr = زبیر
Mahmood|Mahmud|Mahmoud = محمود
Javid|Jawid|Javed = جاوید
Najib|Najeeb = نجیب
Sharif|Sharef = شریف
""")

TAJIK_FEMALE = parse_pool("""
Farishta|Fereshta|Freshta|Fereshteh = فرشته
Mursal|Morsal = مرسل
Nilofar|Niloufar|Niloofar|Nilufar = نیلوفر
Shabnam = شبنم
Lida = لیدا
Mina|Meena = مینا
Tamana|Tamanna = تمنا
Madina|Madeena = مدینه
Zahra = زهرا
Fatima|Fatema = فاطمه
Maryam|Mariam = مریم
Sima|Seema = سیما
Nahid|Naheed = ناهید
Zuhra|Zohra = زهره
Arezo|Arezoo|Arzu = آرزو
Mahbooba|Mahbuba = محبوبه
Homa|Huma = هما
Parisa = پریسا
Wajiha|Wajeeha = وجیهه
Sodaba|Sudaba = سودابه
""")

TAJIK_FAMILY = parse_pool("""
Rahimi = رحیمی
Karimi = کریمی
Noori|Nouri|Nuri = نوری
Sharifi = شریفی
Amiri = امیری
Azizi = عزیزی
Hakimi = حکیمی
Sadat|Saadat = سادات
Rasuli|Rasooli = رسولی
Faizi|Faizy = فیضی
Samadi = صمدی
Qaderi|Qadiri = قادری
Habibi = حبیبی
Kohistani|Kuhistani = کوهستانی
Panjshiri = پنجشیری
Andarabi = اندرابی
Badakhshi = بدخشی
Mohseni|Muhsini = محسنی
Wahidi|Vahidi = وحیدی
Nazari = نظری
Ahmadi = احمدی
Ghani = غنی
""")

# --- Iranian (Persian orthography) -----------------------------------------------------------
IRANIAN_MALE = parse_pool("""
Mohammad|Mohamad|Muhammad = محمد
Ali = علی
Reza = رضا
Hossein|Hosein|Hussein = حسین
Mehdi|Mahdi = مهدی
Amir = امیر
Hamid = حمید
Saeed|Saeid|Said = سعید
Majid|Majeed = مجید
Behzad = بهزاد
Farhad = فرهاد
Babak = بابک
Arash = آرش
Dariush|Daryoush|Dariosh = داریوش
Kourosh|Kurosh|Koorosh = کوروش
Mojtaba|Mujtaba = مجتبی
Morteza|Mortaza = مرتضی
Javad = جواد
Omid = امید
Navid = نوید
Pouya|Puya|Pooya = پویا
Siamak|Siyamak = سیامک
Ebrahim|Ibrahim = ابراهیم
Masoud|Masood = مسعود
Hamed = حامد
""")

IRANIAN_FEMALE = parse_pool("""
Fatemeh|Fatima|Fateme = فاطمه
Zahra = زهرا
Maryam|Mariam = مریم
Narges = نرگس
Sara|Sarah = سارا
Leila|Leyla|Layla = لیلا
Shirin|Shireen = شیرین
Mina = مینا
Parisa = پریسا
Nasrin|Nasreen = نسرین
Azadeh|Azade = آزاده
Mahsa = مهسا
Niloufar|Niloofar|Nilufar = نیلوفر
Roya = رویا
Samira|Sameera = سمیرا
Somayeh|Somaye|Sumayeh = سمیه
Elham = الهام
Fereshteh|Fereshte = فرشته
Golnaz = گلناز
Mahnaz = مهناز
Zeinab|Zeynab|Zainab = زینب
Masoumeh|Masoome = معصومه
""")

IRANIAN_FAMILY = parse_pool("""
Mohammadi = محمدی
Hosseini|Husseini|Hoseini = حسینی
Ahmadi = احمدی
Rezaei|Rezaee|Rezai = رضایی
Mousavi|Musavi|Moosavi = موسوی
Jafari|Jaafari = جعفری
Karimi = کریمی
Rahimi = رحیمی
Heidari|Haidari|Heydari = حیدری
Sadeghi|Sadeqi = صادقی
Kazemi|Kazimi = کاظمی
Ghasemi|Qasemi = قاسمی
Akbari = اکبری
Nouri|Noori = نوری
Amiri = امیری
Soltani|Sultani = سلطانی
Yousefi|Yusefi = یوسفی
Ebrahimi|Ibrahimi = ابراهیمی
Sharifi = شریفی
Hashemi|Hashimi = هاشمی
Taheri = طاهری
Abbasi = عباسی
Farhadi = فرهادی
Bahrami = بهرامی
Rostami|Rustami = رستمی
Najafi = نجفی
Zarei|Zareie = زارعی
Ghorbani|Qorbani = قربانی
Salehi = صالحی
Moradi = مرادی
""")

# --- Iraqi (Arabic orthography) --------------------------------------------------------------
IRAQI_MALE = parse_pool("""
Mohammed|Muhammad|Mohamed|Mohammad = محمد
Ali = علي
Hussein|Hussain|Husain = حسين
Hassan|Hasan = حسن
Ahmed|Ahmad = أحمد
Omar|Umar = عمر
Mustafa|Moustafa|Mostafa = مصطفى
Yousif|Yousef|Yusuf = يوسف
Ibrahim|Ebrahim = إبراهيم
Abbas = عباس
Haider|Hayder|Haidar = حيدر
Karrar|Karar = كرار
Murtadha|Murtada|Mortada = مرتضى
Abdullah|Abdallah = عبد الله
Sajjad|Sajad = سجاد
Zaid|Zayd|Zeid = زيد
Yasir|Yaser|Yasser = ياسر
Firas|Feras = فراس
Majid|Majed = ماجد
Ammar|Amar = عمار
Saif|Sayf = سيف
Khalid|Khaled = خالد
Mahmoud|Mahmood|Mahmud = محمود
""")

IRAQI_FEMALE = parse_pool("""
Fatima|Fatimah|Fatema = فاطمة
Zainab|Zaynab|Zeinab = زينب
Maryam|Mariam = مريم
Noor|Nour|Nur = نور
Huda|Hoda = هدى
Sara|Sarah = سارة
Ruqaya|Roqaya|Ruqayya = رقية
Zahraa|Zahra = زهراء
Ayat|Ayaat = آيات
Duaa|Doaa|Dua = دعاء
Shahad = شهد
Batool|Batoul|Batul = بتول
Rana = رنا
Israa|Esraa|Isra = إسراء
Aya|Ayah = آية
Hiba|Heba = هبة
Rusul|Rosul = رسل
Shaimaa|Shaima = شيماء
Maysoon|Maysun|Maisoon = ميسون
Suha|Soha = سهى
""")

IRAQI_FAMILY = parse_pool("""
Al-Jubouri|Al-Jaburi|Aljubouri|Al Jubouri = الجبوري
Al-Dulaimi|Al-Dulaymi|Aldulaimi = الدليمي
Al-Tamimi|Al-Tamimy|Altamimi = التميمي
Al-Saadi|Al-Sa'adi|Alsaadi = الساعدي
Al-Musawi|Al-Mousawi|Almusawi = الموسوي
Al-Husseini|Al-Hussaini|Alhusseini = الحسيني
Al-Obaidi|Al-Ubaidi|Alobaidi = العبيدي
Al-Rubaie|Al-Rubaiy|Alrubaie = الربيعي
Al-Shammari|Al-Shamari|Alshammari = الشمري
Al-Zubaidi|Al-Zubaydi|Alzubaidi = الزبيدي
Al-Khafaji|Alkhafaji = الخفاجي
Al-Kaabi|Al-Ka'bi|Alkaabi = الكعبي
Al-Azzawi|Alazzawi = العزاوي
Al-Janabi|Aljanabi = الجنابي
Al-Hashimi|Al-Hashemi|Alhashimi = الهاشمي
Al-Bayati|Albayati = البياتي
Al-Ameri|Al-Amiri|Alameri = العامري
Al-Maliki|Almaliki = المالكي
""")

# --- Pakistani (Urdu orthography) ------------------------------------------------------------
PAKISTANI_MALE = parse_pool("""
Muhammad|Mohammad|Mohammed = محمد
Ali = علی
Ahmed|Ahmad = احمد
Imran = عمران
Asif|Aasif = آصف
Bilal = بلال
Faisal|Faysal = فیصل
Usman|Osman|Usmaan = عثمان
Tariq|Tarik = طارق
Naveed|Navid = نوید
Kashif = کاشف
Waqas|Waqqas = وقاص
Zeeshan|Zishan = ذیشان
Adnan = عدنان
Shahid = شاہد
Khalid|Khaled = خالد
Irfan = عرفان
Hamza|Hamzah = حمزہ
Junaid|Junayd = جنید
Saad = سعد
Umair|Omair = عمیر
Yasir|Yaser = یاسر
Arslan = ارسلان
Nadeem|Nadim = ندیم
Pervaiz|Parvez|Pervez = پرویز
Shahzad = شہزاد
Younis|Yunus|Younas = یونس
Sohail|Suhail = سہیل
""")

PAKISTANI_FEMALE = parse_pool("""
Ayesha|Aisha|Aysha = عائشہ
Fatima|Fatimah = فاطمہ
Rabia|Rabiya = رابعہ
Sana = ثنا
Nadia|Nadiya = نادیہ
Saima = صائمہ
Asma|Asmaa = اسماء
Shazia|Shaziya = شازیہ
Kiran = کرن
Sadia|Saadia = سعدیہ
Hina|Heena = حنا
Amna|Aamna = آمنہ
Mehwish|Mahwish = مہوش
Nasreen|Nasrin = نسرین
Zainab|Zaynab = زینب
Maryam|Mariam = مریم
Samina|Sameena = ثمینہ
Farah = فرح
Rukhsana = رخسانہ
Naila|Nayla = نائلہ
""")

PAKISTANI_FAMILY = parse_pool("""
Khan = خان
Ahmed|Ahmad = احمد
Hussain|Husain = حسین
Malik = ملک
Butt = بٹ
Chaudhry|Chaudhary|Choudhry = چوہدری
Qureshi|Kureshi = قریشی
Shah = شاہ
Sheikh|Shaikh = شیخ
Mirza = مرزا
Rana = رانا
Javed|Javaid = جاوید
Iqbal = اقبال
Raza = رضا
Abbasi = عباسی
Siddiqui|Siddiqi = صدیقی
Masih|Maseeh = مسیح
Bhatti = بھٹی
Gill = گل
Rehman|Rahman = رحمان
Aslam = اسلم
Tahir|Taher = طاہر
Awan = اعوان
Mughal = مغل
""")

# --- Sri Lankan Tamil (Tamil script; family name = father's given name) -----------------------
TAMIL_MALE = parse_pool("""
Kumar|Kumaar = குமார்
Suresh|Sures = சுரேஷ்
Ramesh|Rames = ரமேஷ்
Rajan|Raajan = ராஜன்
Sivakumar|Sivakumaar|Shivakumar = சிவகுமார்
Tharshan|Dharshan|Tharsan = தர்ஷன்
Kajan|Gajan = கஜன்
Nirojan|Niroshan = நிரோஜன்
Satheesh|Sathees|Sathish = சதீஷ்
Prasanth|Prashanth|Pirasanth = பிரசாந்த்
Vinoth|Vinod = வினோத்
Thavarajah|Thavarasa|Thavaraja = தவராஜா
Selvarajah|Selvarasa|Selvaraja = செல்வராஜா
Kanagaratnam|Kanagarathnam|Kanakaratnam = கனகரத்தினம்
Sivarajah|Sivarasa|Sivaraja = சிவராஜா
Jeyakumar|Jayakumar|Jeyakumaar = ஜெயகுமார்
Mathivanan|Mathyvanan = மதிவாணன்
Ravi|Ravee = ரவி
Ganesh|Kanesh|Ganesan = கணேஷ்
Murugan|Murukan = முருகன்
Krishna|Kirushna|Krisna = கிருஷ்ணா
Nimalan|Nimalen = நிமலன்
Sutharsan|Sudharshan|Sutharshan = சுதர்சன்
Thileepan|Dileepan|Thilipan = திலீபன்
Kannan|Kanan = கண்ணன்
Balan|Baalan = பாலன்
""")

TAMIL_FEMALE = parse_pool("""
Kavitha|Kavita|Kaviththa = கவிதா
Sharmila|Sharmilaa|Sarmila = சர்மிளா
Priya|Piriya|Preeya = பிரியா
Lakshmi|Latchumi|Lakshmy = லட்சுமி
Thulasi|Tulasi|Thulasy = துளசி
Vasanthi|Vasanthy|Vasanti = வசந்தி
Nirmala|Nirmalaa = நிர்மலா
Sumathi|Sumathy|Sumati = சுமதி
Malar|Malaar = மலர்
Tharshini|Dharshini|Tharsini = தர்ஷினி
Keerthana|Kirthana|Keerthanaa = கீர்த்தனா
Jeyanthi|Jayanthi|Jeyanthy = ஜெயந்தி
Selvi|Selvy = செல்வி
Rajeswari|Rajeshwari|Rajeswary = ராஜேஸ்வரி
Kalaivani|Kalaivany = கலைவாணி
Mathumitha|Madhumitha = மதுமிதா
Anusha|Anusa|Anoosha = அனுஷா
Yalini|Yazhini|Yaalini = யாழினி
Nithya|Nithiya|Nithyaa = நித்யா
Sivaranjini|Sivaranjani = சிவரஞ்சனி
""")

# --- Somali (Latin script; Somali orthography variants; family name = father's given name) --
SOMALI_MALE = parse_pool("""
Mohamed|Maxamed|Mohammed|Mohamad
Abdi|Cabdi
Abdullahi|Cabdullaahi|Abdulahi|Abdillahi
Ahmed|Axmed|Ahmad
Ali|Cali
Hassan|Xasan|Hasan
Hussein|Xuseen|Husein
Omar|Cumar|Umar
Yusuf|Yuusuf|Yousuf
Ibrahim|Ibraahim
Ismail|Ismaaciil|Ismael
Abdirahman|Cabdiraxmaan|Abdurahman|Abdirahmaan
Abdikarim|Cabdikariim|Abdikariim
Mohamud|Maxamuud|Mahamud
Farah|Faarax
Osman|Cismaan|Usman
Aden|Aadan|Adan
Jama|Jaamac
Nur|Nuur|Noor
Said|Saciid|Saeed
Dahir|Daahir
Warsame|Warsaame
Guled|Guuleed
Bashir|Bashiir
Abdiaziz|Cabdicasiis|Abdulaziz
""")

SOMALI_FEMALE = parse_pool("""
Fadumo|Faduma|Fatuma|Fatima
Amina|Aamina
Asha|Caasha|Aisha
Hawa|Xaawa
Halima|Xaliimo|Halimo
Khadija|Khadiijo|Hadija
Maryan|Maryam|Mariam
Sahra|Zahra|Saxra
Hodan|Hoodan
Ifrah|Ifraax
Nasra|Nasro
Sagal|Saagal
Hibo|Hiba
Ubah|Ubax
Deeqa|Deka
Filsan|Filsaan
Nimco|Nimo
Ayan|Ayaan
Idil|Idiil
Ladan|Laadan
Shukri|Shukriya
Suad|Sucaad|Suaad
""")
