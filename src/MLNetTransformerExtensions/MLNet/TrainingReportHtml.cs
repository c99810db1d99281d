using System.Globalization;
using System.Net;
using System.Text;
using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.MLNet;

/// <summary>
/// Renders a <see cref="TrainingReport"/>: plain HTML with inline CSS and SVG (charts scale with the page's width), no
/// scripts and no external resources, so the file opens offline and in mail or chat previews.
/// </summary>
internal static class TrainingReportHtml
{
    private const int Width = 600;
    private const int Height = 220;
    private const int Left = 64;
    private const int Right = 16;
    private const int Top = 16;
    private const int Bottom = 44;

    private const string Style = """
        body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1f2933;background:#f7f9fb;line-height:1.45}
        main{max-width:960px;margin:0 auto;padding:12px}
        h1{font-size:1.4em;margin:.4em 0}h2{font-size:1.15em;margin:1.2em 0 .4em;border-bottom:1px solid #d9e2ec}h3{font-size:1em;margin:.8em 0 .3em}
        section,figure{background:#fff;border:1px solid #e4e7eb;border-radius:8px;padding:10px;margin:10px 0}
        figure{margin:10px 0}figcaption{font-size:.85em;color:#52606d}
        .grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(280px,1fr));gap:10px}
        svg{width:100%;height:auto;display:block}
        table{border-collapse:collapse;width:100%;font-size:.9em}th,td{padding:4px 6px;border-bottom:1px solid #e4e7eb;text-align:right}th:first-child,td:first-child{text-align:left}
        .scroll{overflow-x:auto}
        .tokens{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em;word-wrap:break-word;line-height:1.9}
        .tokens span{border-radius:3px;padding:1px 0}.special{color:#9aa5b1}
        .muted{color:#52606d;font-size:.85em}
        """;

    public static string Render(string title, IReadOnlyList<TrainingProgress> progress, IReadOnlyList<ReportedEvaluation> evaluations)
    {
        var html = new StringBuilder();
        html.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">")
            .Append("<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">")
            .Append("<title>").Append(E(title)).Append("</title><style>").Append(Style).Append("</style></head><body><main>");
        html.Append("<h1>").Append(E(title)).Append("</h1>");
        Summary(html, evaluations);
        Curves(html, progress);
        foreach (var evaluation in evaluations)
        {
            Evaluation(html, evaluation);
        }

        if (evaluations.Count > 0)
        {
            Mistakes(html, evaluations[0]);
        }

        html.Append("</main></body></html>\n");
        return html.ToString();
    }

    private static void Summary(StringBuilder html, IReadOnlyList<ReportedEvaluation> evaluations)
    {
        if (evaluations.Count == 0)
        {
            html.Append("<p class=\"muted\">No evaluation was added to this report.</p>");
            return;
        }

        html.Append("<section><h2>Models</h2><div class=\"scroll\"><table><tr><th>Model</th><th>Rows</th><th>Accuracy</th><th>Macro-F1</th><th>Log-loss</th><th>ECE</th></tr>");
        foreach (var e in evaluations)
        {
            var perClass = ReportMetrics.PerClass(ReportMetrics.Confusion(e));
            var (_, ece) = ReportMetrics.Reliability(e);
            html.Append("<tr><td>").Append(E(e.ModelName)).Append("</td><td>").Append(e.Labels.Length.ToString(CultureInfo.InvariantCulture))
                .Append("</td><td>").Append(F(ReportMetrics.Accuracy(e))).Append("</td><td>").Append(F(perClass.Average(c => c.F1)))
                .Append("</td><td>").Append(F(ReportMetrics.LogLoss(e))).Append("</td><td>").Append(F(ece)).Append("</td></tr>");
        }

        html.Append("</table></div><p class=\"muted\">ECE: expected calibration error, the row-weighted gap between confidence and accuracy over 10 confidence bins.</p></section>");
    }

    private static void Curves(StringBuilder html, IReadOnlyList<TrainingProgress> progress)
    {
        html.Append("<h2>Training</h2>");
        if (progress.Count == 0)
        {
            html.Append("<p class=\"muted\">No training progress was recorded (the model was trained elsewhere, or evaluated only).</p>");
            return;
        }

        var steps = progress.Where(p => !p.IsEpochEnd).ToList();
        var epochs = progress.Where(p => p.IsEpochEnd).ToList();
        html.Append("<div class=\"grid\">");
        Figure(html, "Training loss (mean over the epoch so far) by step",
            LineChart([("loss", "#2563eb", [.. steps.Select(p => ((double)p.Step, p.Loss))])], "step", false));
        Figure(html, "Learning rate by step",
            LineChart([("learning rate", "#d97706", [.. steps.Select(p => ((double)p.Step, p.LearningRate))])], "step", false));
        var validated = epochs.Where(p => p.ValidationAccuracy is not null).ToList();
        if (validated.Count > 0)
        {
            Figure(html, "Validation accuracy (blue) and log-loss (red) by epoch",
                LineChart(
                    [
                        ("accuracy", "#2563eb", [.. validated.Select(p => ((double)p.Epoch, p.ValidationAccuracy!.Value))]),
                        ("log-loss", "#dc2626", [.. validated.Select(p => ((double)p.Epoch, p.ValidationLogLoss ?? double.NaN)).Where(v => !double.IsNaN(v.Item2))]),
                    ], "epoch", true));
        }
        else
        {
            html.Append("<p class=\"muted\">No validation set: no per-epoch validation metrics.</p>");
        }

        html.Append("</div>");
    }

    private static void Evaluation(StringBuilder html, ReportedEvaluation e)
    {
        var confusion = ReportMetrics.Confusion(e);
        var perClass = ReportMetrics.PerClass(confusion);
        html.Append("<h2>").Append(E(e.ModelName)).Append("</h2><div class=\"grid\">");
        Figure(html, "Confusion matrix (rows: true class, columns: predicted; shade: share of the row)", Heatmap(confusion, e.ClassNames));
        var (bins, ece) = ReportMetrics.Reliability(e);
        Figure(html, string.Create(CultureInfo.InvariantCulture, $"Reliability: accuracy (bars) against confidence (diagonal) in 10 confidence bins; ECE {ece:0.000}"), ReliabilityDiagram(bins));
        html.Append("</div><section><h3>Per class</h3><div class=\"scroll\"><table><tr><th>Class</th><th>Precision</th><th>Recall</th><th>F1</th><th>Rows</th></tr>");
        for (var c = 0; c < e.ClassNames.Length; c++)
        {
            var support = e.Labels.Count(l => l == c);
            html.Append("<tr><td>").Append(E(e.ClassNames[c])).Append("</td><td>").Append(F(perClass[c].Precision)).Append("</td><td>")
                .Append(F(perClass[c].Recall)).Append("</td><td>").Append(F(perClass[c].F1)).Append("</td><td>")
                .Append(support.ToString(CultureInfo.InvariantCulture)).Append("</td></tr>");
        }

        html.Append("</table></div></section>");
    }

    private static void Mistakes(StringBuilder html, ReportedEvaluation e)
    {
        html.Append("<h2>Most confidently wrong (").Append(E(e.ModelName)).Append(")</h2>");
        if (e.Mistakes.Count == 0)
        {
            html.Append("<p class=\"muted\">").Append(ReportMetrics.ConfidentMistakes(e.Labels, e.Probabilities, 1).Length == 0
                ? "No row was predicted wrongly."
                : "Token attributions were not computed for this model.").Append("</p>");
            return;
        }

        html.Append("<p class=\"muted\">Each token is shaded by its integrated-gradients attribution to the wrongly predicted class: red pushed towards it, blue away from it.</p>");
        foreach (var mistake in e.Mistakes)
        {
            var probabilities = e.Probabilities[mistake.Row];
            var predicted = ReportMetrics.ArgMax(probabilities);
            var why = mistake.Attribution;
            html.Append("<section><div class=\"muted\">true <b>").Append(E(e.ClassNames[e.Labels[mistake.Row]])).Append("</b>, predicted <b>")
                .Append(E(e.ClassNames[predicted])).Append("</b> with probability ").Append(F(probabilities[predicted]));
            if (why.CompletenessError is double error)
            {
                html.Append(string.Create(CultureInfo.InvariantCulture, $"; {why.Steps} steps, completeness error {error:0.000} of a score change {why.Score - why.BaselineScore:0.000}"));
            }

            html.Append("</div><div class=\"tokens\">");
            Tokens(html, why);
            html.Append("</div></section>");
        }
    }

    /// <summary>Tokens as text again (WordPiece's ## joins, byte-level BPE's Ġ is a space), each shaded by its attribution.</summary>
    internal static void Tokens(StringBuilder html, TokenAttribution why)
    {
        var scale = why.Attributions.Select(Math.Abs).DefaultIfEmpty(0).Max();
        // Byte-level BPE and SentencePiece mark the pieces that start a word (Ġ, ▁), so an unmarked piece continues
        // the word before it; WordPiece marks the continuations (##) instead.
        var marksWordStarts = why.Tokens.Any(t => t.Length > 1 && t[0] is 'Ġ' or '▁');
        var previousSpecial = true;
        for (var i = 0; i < why.Tokens.Count; i++)
        {
            var token = why.Tokens[i];
            var special = token.Length > 2 && ((token[0] == '[' && token[^1] == ']') || (token[0] == '<' && token[^1] == '>'));
            var space = i > 0 ? " " : string.Empty;
            string shown;
            if (token.StartsWith("##", StringComparison.Ordinal))
            {
                shown = token[2..];
            }
            else if (token[0] is 'Ġ' or '▁')
            {
                shown = space + token[1..];
            }
            else
            {
                shown = token[0] == 'Ċ' ? " ↵" : special || previousSpecial || !marksWordStarts ? space + token : token;
            }

            previousSpecial = special;

            var a = why.Attributions[i];
            var alpha = scale == 0 ? 0 : Math.Abs(a) / scale * 0.85;
            var color = a >= 0 ? "220,38,38" : "37,99,235";
            // The grey of special tokens is inline: the fragment also stands alone, outside the report's stylesheet (ReportCharts).
            html.Append("<span").Append(special ? " class=\"special\"" : string.Empty)
                .Append(string.Create(CultureInfo.InvariantCulture, $" style=\"background:rgba({color},{alpha:0.###}){(special ? ";color:#9aa5b1" : string.Empty)}\" title=\"{a:0.0000}\">"))
                .Append(E(shown)).Append("</span>");
        }
    }

    private static void Figure(StringBuilder html, string caption, string svg) =>
        html.Append("<figure>").Append(svg).Append("<figcaption>").Append(E(caption)).Append("</figcaption></figure>");

    /// <summary>A line chart of one or more series over a shared x axis, with 5 ticks on each axis.</summary>
    internal static string LineChart(IReadOnlyList<(string Name, string Color, (double X, double Y)[] Points)> series, string xLabel, bool markers)
    {
        var all = series.SelectMany(s => s.Points).ToList();
        var svg = new StringBuilder();
        svg.Append(string.Create(CultureInfo.InvariantCulture, $"<svg viewBox=\"0 0 {Width} {Height}\" role=\"img\">"));
        if (all.Count == 0)
        {
            return svg.Append("<text x=\"20\" y=\"40\" font-size=\"14\">no data</text></svg>").ToString();
        }

        var (x0, x1) = Range(all.Select(p => p.X));
        var (y0, y1) = Range(all.Select(p => p.Y).Append(0));
        double X(double x) => Left + ((x - x0) / (x1 - x0) * (Width - Left - Right));
        double Y(double y) => Height - Bottom - ((y - y0) / (y1 - y0) * (Height - Top - Bottom));
        Axes(svg, x0, x1, y0, y1, X, Y, xLabel);
        foreach (var (name, color, points) in series)
        {
            svg.Append("<polyline fill=\"none\" stroke-width=\"2\" stroke=\"").Append(color).Append("\" points=\"")
                .AppendJoin(' ', points.Select(p => string.Create(CultureInfo.InvariantCulture, $"{X(p.X):0.#},{Y(p.Y):0.#}")))
                .Append("\"><title>").Append(E(name)).Append("</title></polyline>");
            if (markers || points.Length == 1)
            {
                foreach (var p in points)
                {
                    svg.Append(string.Create(CultureInfo.InvariantCulture, $"<circle cx=\"{X(p.X):0.#}\" cy=\"{Y(p.Y):0.#}\" r=\"3.5\" fill=\"{color}\"><title>{E(name)} {p.Y:0.0000}</title></circle>"));
                }
            }
        }

        return svg.Append("</svg>").ToString();
    }

    private static string ReliabilityDiagram((int Count, double Confidence, double Accuracy)[] bins)
    {
        var svg = new StringBuilder();
        svg.Append(string.Create(CultureInfo.InvariantCulture, $"<svg viewBox=\"0 0 {Width} {Height}\" role=\"img\">"));
        double X(double x) => Left + (x * (Width - Left - Right));
        double Y(double y) => Height - Bottom - (y * (Height - Top - Bottom));
        Axes(svg, 0, 1, 0, 1, X, Y, "confidence");
        var width = 1.0 / bins.Length;
        for (var b = 0; b < bins.Length; b++)
        {
            if (bins[b].Count == 0)
            {
                continue;
            }

            svg.Append(string.Create(CultureInfo.InvariantCulture,
                $"<rect x=\"{X(b * width) + 1:0.#}\" y=\"{Y(bins[b].Accuracy):0.#}\" width=\"{X(width) - X(0) - 2:0.#}\" height=\"{Y(0) - Y(bins[b].Accuracy):0.#}\" fill=\"#60a5fa\"><title>{bins[b].Count} rows, confidence {bins[b].Confidence:0.000}, accuracy {bins[b].Accuracy:0.000}</title></rect>"));
        }

        svg.Append(string.Create(CultureInfo.InvariantCulture, $"<line x1=\"{X(0):0.#}\" y1=\"{Y(0):0.#}\" x2=\"{X(1):0.#}\" y2=\"{Y(1):0.#}\" stroke=\"#52606d\" stroke-dasharray=\"4 3\"/>"));
        return svg.Append("</svg>").ToString();
    }

    internal static string Heatmap(int[,] counts, string[] names)
    {
        var k = names.Length;
        const int label = 90;
        var cell = Math.Max(24, Math.Min(80, (Width - label) / Math.Max(1, k)));
        var size = label + (cell * k);
        var svg = new StringBuilder();
        svg.Append(string.Create(CultureInfo.InvariantCulture, $"<svg viewBox=\"0 0 {size + 4} {size + 4}\" role=\"img\" font-size=\"12\">"));
        for (var c = 0; c < k; c++)
        {
            svg.Append(string.Create(CultureInfo.InvariantCulture, $"<text x=\"{label + (c * cell) + (cell / 2)}\" y=\"{label - 6}\" text-anchor=\"middle\">{E(Short(names[c]))}</text>"));
            svg.Append(string.Create(CultureInfo.InvariantCulture, $"<text x=\"{label - 6}\" y=\"{label + (c * cell) + (cell / 2) + 4}\" text-anchor=\"end\">{E(Short(names[c]))}</text>"));
        }

        for (var t = 0; t < k; t++)
        {
            double row = 0;
            for (var p = 0; p < k; p++)
            {
                row += counts[t, p];
            }

            for (var p = 0; p < k; p++)
            {
                var share = row == 0 ? 0 : counts[t, p] / row;
                var x = label + (p * cell);
                var y = label + (t * cell);
                svg.Append(string.Create(CultureInfo.InvariantCulture,
                    $"<rect x=\"{x}\" y=\"{y}\" width=\"{cell - 1}\" height=\"{cell - 1}\" fill=\"rgba(37,99,235,{0.06 + (0.94 * share):0.###})\"><title>true {E(names[t])}, predicted {E(names[p])}: {counts[t, p]} ({share:P1})</title></rect>"));
                svg.Append(string.Create(CultureInfo.InvariantCulture,
                    $"<text x=\"{x + (cell / 2)}\" y=\"{y + (cell / 2) + 4}\" text-anchor=\"middle\" fill=\"{(share > 0.5 ? "#fff" : "#1f2933")}\">{counts[t, p]}</text>"));
            }
        }

        return svg.Append("</svg>").ToString();
    }

    private static void Axes(StringBuilder svg, double x0, double x1, double y0, double y1, Func<double, double> x, Func<double, double> y, string xLabel)
    {
        svg.Append("<g font-size=\"15\" fill=\"#52606d\" stroke=\"none\">");
        for (var i = 0; i <= 4; i++)
        {
            var xv = x0 + ((x1 - x0) * i / 4);
            var yv = y0 + ((y1 - y0) * i / 4);
            svg.Append(string.Create(CultureInfo.InvariantCulture, $"<text x=\"{x(xv):0.#}\" y=\"{Height - Bottom + 18}\" text-anchor=\"middle\">{Tick(xv)}</text>"));
            svg.Append(string.Create(CultureInfo.InvariantCulture, $"<text x=\"{Left - 6}\" y=\"{y(yv) + 4:0.#}\" text-anchor=\"end\">{Tick(yv)}</text>"));
            svg.Append(string.Create(CultureInfo.InvariantCulture, $"<line x1=\"{Left}\" x2=\"{Width - Right}\" y1=\"{y(yv):0.#}\" y2=\"{y(yv):0.#}\" stroke=\"#e4e7eb\"/>"));
        }

        svg.Append(string.Create(CultureInfo.InvariantCulture, $"<text x=\"{(Left + Width - Right) / 2}\" y=\"{Height - 6}\" text-anchor=\"middle\">{E(xLabel)}</text></g>"));
    }

    private static (double Low, double High) Range(IEnumerable<double> values)
    {
        var list = values.Where(double.IsFinite).ToList();
        if (list.Count == 0)
        {
            return (0, 1);
        }

        var (low, high) = (list.Min(), list.Max());
        return high > low ? (low, high) : (low - 0.5, high + 0.5);
    }

    private static string Tick(double v) => Math.Abs(v) is > 0 and < 0.01 or >= 10000
        ? v.ToString("0.0e0", CultureInfo.InvariantCulture)
        : v.ToString(Math.Abs(v) >= 100 ? "0" : "0.###", CultureInfo.InvariantCulture);

    private static string Short(string name) => name.Length <= 12 ? name : name[..11] + "…";

    private static string F(double v) => v.ToString("0.0000", CultureInfo.InvariantCulture);

    internal static string E(string text) => WebUtility.HtmlEncode(text);
}
