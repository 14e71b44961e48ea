"""The sample hospital's dictionaries: departments, staff, lab panels and exam items.

Codes are chosen so every code map in specs/mappings/codes knows them (department codes in
hospital_dept_std, lab items in lis_item_std, exam items in pacs_exam_item_std): the demo shows
translation, never an unmapped-code failure. Reference ranges and units are the usual adult ones.
"""

from __future__ import annotations

from dataclasses import dataclass

ORG_CODE = "457759922"
ORG_NAME = "示例市人民医院"
"""The sample hospital; its name is also what its PACS writes into InstitutionName (pacs_institution_org)."""


@dataclass(frozen=True, slots=True)
class Dept:
    code: str
    name: str


@dataclass(frozen=True, slots=True)
class Staff:
    code: str
    name: str
    dept: Dept


RESPIRATORY = Dept("1411", "呼吸内科门诊")
CARDIOLOGY = Dept("1511", "心血管内科门诊")
INTERNAL_WARD = Dept("1201", "内科病房")
SURGERY_WARD = Dept("2101", "普外科病房")
PAEDIATRICS = Dept("3101", "儿科门诊")
LAB = Dept("4300", "检验科")
RADIOLOGY = Dept("5100", "放射科")
ULTRASOUND = Dept("5200", "超声科")
PE_CENTRE = Dept("1201", "健康管理中心")
"""The PE centre orders under the internal-medicine code (it has none of its own in the HIS dictionary)."""

CLINICS = (RESPIRATORY, CARDIOLOGY, INTERNAL_WARD, SURGERY_WARD)

CLINICIANS = {
    RESPIRATORY: Staff("2291", "赵磊", RESPIRATORY),
    CARDIOLOGY: Staff("8106", "白萍", CARDIOLOGY),
    INTERNAL_WARD: Staff("1207", "孙立新", INTERNAL_WARD),
    SURGERY_WARD: Staff("2133", "钱卫东", SURGERY_WARD),
}
PE_DOCTOR = Staff("1288", "周文静", PE_CENTRE)
LAB_TESTER = Staff("4311", "林平", LAB)
LAB_REPORTER = Staff("8262", "黄胜", LAB)
LAB_REVIEWER = Staff("8263", "刘敏", LAB)
TECHNICIANS = {RADIOLOGY: Staff("5123", "周涛", RADIOLOGY), ULTRASOUND: Staff("5207", "吴倩", ULTRASOUND)}
RADIOLOGISTS = {RADIOLOGY: (Staff("2292", "张欣悦", RADIOLOGY), Staff("2293", "陈建", RADIOLOGY)),
                ULTRASOUND: (Staff("5211", "郑雅文", ULTRASOUND), Staff("5212", "马晓东", ULTRASOUND))}

WARDS = {INTERNAL_WARD: ("W12", "内科一病区"), SURGERY_WARD: ("W21", "普外科病区")}


@dataclass(frozen=True, slots=True)
class LabItem:
    code: str
    name: str
    unit: str
    low: float
    high: float
    decimals: int


@dataclass(frozen=True, slots=True)
class Panel:
    code: str
    name: str
    category: str
    sample_type: str
    instrument: str
    items: tuple[LabItem, ...]


ALB = LabItem("ALB", "白蛋白", "g/L", 40, 55, 1)
ALT = LabItem("ALT", "丙氨酸氨基转移酶", "U/L", 9, 50, 0)
AST = LabItem("AST", "天门冬氨酸氨基转移酶", "U/L", 15, 40, 0)
TBIL = LabItem("TBIL", "总胆红素", "μmol/L", 3.4, 20.5, 1)
GLU = LabItem("GLU", "葡萄糖", "mmol/L", 3.9, 6.1, 2)
CREA = LabItem("CREA", "肌酐", "μmol/L", 57, 111, 0)
UREA = LabItem("UREA", "尿素", "mmol/L", 3.1, 8.0, 2)
WBC = LabItem("WBC", "白细胞计数", "10^9/L", 3.5, 9.5, 2)
HGB = LabItem("HGB", "血红蛋白", "g/L", 115, 175, 0)
PLT = LabItem("PLT", "血小板计数", "10^9/L", 125, 350, 0)

PANELS = (
    Panel("G011", "肝功能", "生化", "血清", "BS-2000M", (ALB, ALT, AST, TBIL)),
    Panel("G021", "肾功能+血糖", "生化", "血清", "BS-2000M", (CREA, UREA, GLU)),
    Panel("G031", "血常规", "临检", "全血", "BC-6800", (WBC, HGB, PLT)),
    Panel("G001", "生化全套", "生化", "血清", "BS-2000M", (ALB, ALT, AST, TBIL, GLU, CREA, UREA)),
)


@dataclass(frozen=True, slots=True)
class ExamItem:
    code: str
    name: str
    modality: str
    body_part_code: str
    body_part: str
    method: str
    price: float
    dept: Dept
    findings: str
    conclusion: str
    abnormal_findings: str
    abnormal_conclusion: str


EXAM_ITEMS = (
    ExamItem("CT0101", "胸部CT平扫", "CT", "CHEST", "胸部", "平扫", 260.00, RADIOLOGY,
             "两肺纹理清晰，未见明显实质性病变。纵隔居中，心影不大。", "胸部CT平扫未见明显异常。",
             "右肺下叶见斑片状密度增高影，边缘模糊。纵隔居中，心影不大。", "右肺下叶炎症，建议抗炎治疗后复查。"),
    ExamItem("CT0201", "颅脑CT平扫", "CT", "HEAD", "颅脑", "平扫", 220.00, RADIOLOGY,
             "脑实质密度均匀，灰白质分界清，脑室系统未见扩大，中线结构居中。", "颅脑CT平扫未见明显异常。",
             "左侧基底节区见小片状低密度影，边界欠清。脑室系统未见扩大。", "左侧基底节区腔隙性脑梗死。"),
    ExamItem("MR0101", "头颅MR平扫", "MR", "HEAD", "头颅", "平扫", 480.00, RADIOLOGY,
             "脑实质信号均匀，未见异常信号影，脑室系统未见扩大。", "头颅MR平扫未见明显异常。",
             "双侧半卵圆中心见多发斑点状长T2信号影，FLAIR呈高信号。", "双侧半卵圆中心多发缺血灶。"),
    ExamItem("DR0101", "胸部正位DR", "DR", "CHEST", "胸部", "正位", 80.00, RADIOLOGY,
             "两肺纹理清晰，肺野透亮度正常，心影大小形态正常，双膈面光整。", "心肺膈未见明显异常。",
             "两肺纹理增多、增粗，以下肺野为著，心影大小正常。", "两肺纹理增多，考虑支气管炎。"),
    ExamItem("US0101", "腹部彩超", "US", "ABDOMEN", "腹部", "彩色多普勒", 150.00, ULTRASOUND,
             "肝脏大小形态正常，包膜光整，实质回声均匀；胆囊、胰腺、脾脏未见明显异常。", "肝胆胰脾未见明显异常。",
             "肝脏大小正常，实质回声细密增强，远场回声衰减；胆囊、胰腺、脾脏未见明显异常。", "脂肪肝（轻度）。"),
)
"""One item per code of pacs_exam_item_std. US reports carry no DICOM study (the ultrasound unit archives nothing)."""

DIAGNOSES = {
    RESPIRATORY: [("J20.900", "急性支气管炎", "咳嗽、咳痰一周"), ("J18.900", "社区获得性肺炎", "发热伴咳嗽三天")],
    CARDIOLOGY: [("I10.x00", "原发性高血压", "头晕一周"), ("I25.103", "冠状动脉粥样硬化性心脏病", "活动后胸闷两月")],
    INTERNAL_WARD: [("E11.900", "2型糖尿病", "口干多饮半年"), ("I63.900", "脑梗死", "右侧肢体无力两天")],
    SURGERY_WARD: [("K80.101", "胆囊结石伴慢性胆囊炎", "右上腹疼痛反复发作一年"), ("K35.800", "急性阑尾炎", "转移性右下腹痛一天")],
    PE_CENTRE: [("Z00.000", "健康体检", "单位年度体检")],
}
"""(ICD-10 国标版 code, name, chief complaint) by the department that sees the patient."""
