from dataclasses import fields

import streamlit as st

import shell

from musicgen.data import builtins, datasets
from musicgen.runs import store
from musicgen import families
from musicgen.config import OPTIMIZERS
from musicgen.errors import MusicgenError
from musicgen.services.trainer import launch, launch_finetune, launch_resume, reap, request_stop

shell.enter()


def slider(config, name: str, label: str, **kw):
    """A slider drawn from the config field's own range and default: one source of truth."""
    f = next(f for f in fields(config) if f.name == name)
    lo, hi = f.metadata["range"]
    return st.slider(label, lo, hi, getattr(config, name), help=f.metadata["help"], **kw)


st.title("Train")
st.write("Training runs in its own process: it goes on if you close this tab, and this page shows it again "
         "when you come back.")

datasets = [i.name for i in datasets.list_datasets()]
current = st.session_state.get("dataset", builtins.DEFAULT_DATASET)
c1, c2, c3 = st.columns(3)
dataset = c1.selectbox("Dataset", datasets, index=datasets.index(current) if current in datasets else 0)
st.session_state["dataset"] = dataset  # as on the Dataset page: the one being worked on, shown in the sidebar
family = c2.selectbox("Model family", families.FAMILIES,
                      help=" ".join(f"{f.name}: {f.help}." for f in families.REGISTRY.values()))
presets = list(families.get(family).presets)
preset_name = c3.selectbox("Preset", presets, index=presets.index("default"),
                           help="default is ours; the others reproduce the projects they are named after "
                                "or trade quality for speed")
model_cfg, train_cfg = families.preset(family, preset_name)

with st.form("train"):
    c1, c2, c3 = st.columns(3)
    with c1:
        epochs = slider(train_cfg, "epochs", "Epochs")
        patience = slider(train_cfg, "patience", "Patience")
    with c2:
        seq_length = slider(model_cfg, "seq_length", "Sequence length")
        dropout = slider(model_cfg, "dropout", "Dropout")
    with c3:
        batch_size = slider(train_cfg, "batch_size", "Batch size")
        learning_rate = st.number_input("Learning rate", 1e-5, 0.1, train_cfg.learning_rate, format="%.4f")
    c1, c2, c3 = st.columns(3)
    units = c1.text_input("LSTM sizes", " ".join(map(str, model_cfg.units)), help="one number per layer")
    optimizer = c2.selectbox("Optimizer", OPTIMIZERS, index=OPTIMIZERS.index(train_cfg.optimizer))
    seed = c3.number_input("Seed", 0, 2**31 - 1, 0)
    name = st.text_input("Model name", f"{dataset}-{family.split('-')[0]}")
    start = st.form_submit_button("Start training", type="primary",
                                  disabled=not st.session_state.get("may_change"))

if start:
    try:
        sizes = tuple(int(u) for u in units.split())
        folder = launch(dataset, name, family, preset_name,
                        {"seq_length": seq_length, "dropout": dropout, "units": sizes},
                        {"epochs": epochs, "patience": patience, "batch_size": batch_size,
                         "learning_rate": learning_rate, "optimizer": optimizer, "seed": int(seed)})
        st.session_state["watch"] = folder.name
    except ValueError:
        st.error("LSTM sizes must be whole numbers separated by spaces, e.g. 256 256.")
    except MusicgenError as e:
        st.error(shell.plain(e))

models = store.list_models()
if not models:
    st.info("No models yet. Start one above.")
    st.stop()
running = [m.name for m in models if m.state == "running"]
names = [m.name for m in models]
if "watch_next" in st.session_state:
    st.session_state["watch"] = st.session_state.pop("watch_next")
if st.session_state.get("watch") not in names:
    st.session_state["watch"] = running[0] if running else names[0]
watch = st.selectbox("Watch", names, key="watch")  # a new run is selected at once: Start sets this key
STATE_BOX = {"failed": st.error, "ended": st.warning, "finished": st.success}


def loss_chart(table: dict) -> None:
    """Training and validation loss on a log axis: they differ by orders of magnitude for some heads."""
    import altair as alt
    import pandas as pd

    rows = [{"epoch": e, "which": k.replace("val_loss", "validation").replace("loss", "training"), "loss": v}
            for k in ("loss", "val_loss") if k in table for e, v in zip(table["epoch"], table[k])
            if v is not None and v > 0]
    chart = alt.Chart(pd.DataFrame(rows)).mark_line(point=True).encode(
        x=alt.X("epoch:Q", axis=alt.Axis(tickMinStep=1)), y=alt.Y("loss:Q", scale=alt.Scale(type="log")),
        color=alt.Color("which:N", title=None))
    st.altair_chart(chart, width="stretch")
    st.caption("Validation loss is measured on pieces the model never learns from: while it falls, the model "
               "is learning the style; when it rises and training loss still falls, it is memorizing.")


@st.fragment(run_every=1.0)
def live(name: str):
    reap()  # collect finished trainers: no defunct processes under the server
    folder = store.model_path(name)
    status = store.read_status(folder)
    state = status["state"]
    message = f" ({shell.plain(status['message'])})" if status.get("message") else ""
    line = f"**{shell.plain(name)}**: {state}{message}"
    STATE_BOX.get(state, st.info)(line)
    now = store.progress_now(folder)
    if state == "running" and now and now.get("batches"):
        st.progress(min(1.0, now["batch"] / now["batches"]),
                    text=f"epoch {now['epoch']}: batch {now['batch']} of {now['batches']}")
    figures = store.heldout(folder) if state == "finished" else None
    if figures:
        first = next(iter(figures["loss"]))
        cols = st.columns(4)
        cols[0].metric("Held-out pieces", figures["pieces"])
        cols[1].metric(f"Next-{first} accuracy", f"{figures['accuracy']:.1%}")
        cols[2].metric(f"{first.capitalize()} loss", f"{figures['loss'][first]:.3f}")
        if "step_mae" in figures:
            cols[3].metric("Step error", f"{figures['step_mae']:.3f} {figures['unit']}")
    table = store.epoch_table(folder)
    if table["epoch"]:
        loss_chart(table)
        with st.expander("Loss per head"):
            heads = {k: v for k, v in table.items() if k.endswith("_loss") and k != "val_loss"}
            st.line_chart(heads | {"epoch": table["epoch"]}, x="epoch", y=list(heads))
    may = st.session_state.get("may_change", False)
    if state == "running" and st.button("Stop training", key=f"stop-{name}", disabled=not may):
        request_stop(folder)
        st.toast("Stopping after the current batch; the model is saved first.")
    if state in ("stopped", "ended") and (folder / "last.keras").exists() and \
            st.button("Resume training", key=f"resume-{name}", disabled=not may):
        try:
            launch_resume(folder)
        except MusicgenError as e:
            st.error(shell.plain(e))
    if (folder / "model.keras").exists() and state != "running":  # here, so it appears as the run ends
        finetune(name)


def finetune(watch: str) -> None:
    """A new run from a finished (or stopped) model's weights, on a dataset the user chooses."""
    with st.expander(f"Fine-tune {shell.plain(watch)} on a dataset", icon=":material/tune:"):
        st.caption("A new model that starts from what this one has learned and goes on learning from the "
                   "dataset you choose (for example your own pieces): it keeps this model's family and settings.")
        with st.form("finetune"):
            c1, c2, c3 = st.columns(3)
            tune_data = c1.selectbox("Dataset", datasets, index=datasets.index(dataset))
            tune_epochs = c2.slider("Epochs", 1, 50, 5)
            tune_name = c3.text_input("New model name", f"{watch}-tuned")
            if st.form_submit_button("Fine-tune", disabled=not st.session_state.get("may_change")):
                try:
                    # the Watch box exists already: it takes the new run on the rerun
                    st.session_state["watch_next"] = launch_finetune(watch, tune_data, tune_name,
                                                                     tune_epochs).name
                    st.rerun()
                except MusicgenError as e:
                    st.error(shell.plain(e))


live(watch)


@st.fragment(run_every=2.0)
def models_table():
    models = store.list_models()
    st.dataframe({
        "model": [m.name for m in models],
        "status": [m.state for m in models],
        "family": [m.family for m in models],
        "preset": [m.preset for m in models],
        "dataset": [m.dataset for m in models],
        "epochs": [m.epochs for m in models],
        "best validation loss": [round(m.best_val_loss, 4) if m.best_val_loss is not None else None
                                 for m in models],
        "size (MB)": [round(m.size_bytes / 2**20, 1) for m in models],
    }, hide_index=True)


st.subheader("Models")
models_table()
with st.expander("Delete a model"):
    doomed = st.selectbox("Model to delete", names, key="doomed")
    sure = st.checkbox(f"Yes, delete {shell.plain(doomed)} and its files for good")
    if st.button("Delete", disabled=not (sure and st.session_state.get("may_change"))):
        try:
            store.delete_model(doomed)
            st.session_state.pop("watch", None)
            st.rerun()
        except MusicgenError as e:
            st.error(shell.plain(e))
