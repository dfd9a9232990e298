"""Dataset statistics that say how hard box supervision is on a dataset (toy or real)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from tqdm.auto import tqdm


def box_fill_table(dataset, max_images: int | None = None) -> pd.DataFrame:
    """One row per object: class, box fill (object pixels / box pixels), box area, image size.

    The fill is measured with the instance mask when the dataset has one, else with the class
    mask restricted to the box (objects of the same class overlapping the box count too).
    """
    rows = []
    n = len(dataset) if max_images is None else min(max_images, len(dataset))
    for i in tqdm(range(n), desc="box fill", mininterval=2, leave=False):
        s = dataset[i]
        h, w = s.size
        for j, (b, lab) in enumerate(zip(s.boxes, s.labels)):
            x0, y0, x1, y1 = (int(round(v)) for v in b)
            area = max((x1 - x0) * (y1 - y0), 1)
            if s.instances is not None and len(s.instances) == len(s.boxes):
                obj = int(s.instances[j][y0:y1, x0:x1].sum())
            elif s.mask is not None:
                obj = int((s.mask[y0:y1, x0:x1] == lab).sum())
            else:
                obj = None
            rows.append({"image": s.image_id, "class": dataset.classes[lab], "fill": None if obj is None else obj / area,
                         "box_area_frac": area / (h * w), "height": h, "width": w, "objects": len(s.boxes)})
    return pd.DataFrame(rows)


def summary(dataset, max_images: int | None = None) -> dict:
    """Objects per image, image size, and mean box fill per class (lower = harder for boxes)."""
    df = box_fill_table(dataset, max_images)
    n = len(dataset) if max_images is None else min(max_images, len(dataset))
    per_image = df.groupby("image").size().reindex(df["image"].unique())
    fill = df.dropna(subset=["fill"]).groupby("class")["fill"].mean()
    return {
        "images": int(n),
        "objects_per_image": float(len(df) / max(n, 1)),
        "max_objects_per_image": int(per_image.max()) if len(per_image) else 0,
        "image_size": f"{int(df['width'].median())}x{int(df['height'].median())}" if len(df) else "",
        "mean_box_fill": float(df["fill"].mean()) if df["fill"].notna().any() else float("nan"),
        "box_fill_per_class": {k: float(v) for k, v in fill.items()},
        "mean_box_area_frac": float(df["box_area_frac"].mean()) if len(df) else float("nan"),
    }
