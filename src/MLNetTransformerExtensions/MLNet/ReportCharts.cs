using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.MLNet;

/// <summary>
/// The <see cref="TrainingReport"/>'s charts one at a time, for a notebook or a page of your own: each is a standalone
/// SVG image (or, for token attributions, an HTML fragment) with no scripts and nothing loaded from the network, so it
/// renders offline and in a saved notebook.
/// </summary>
/// <example>
/// In a .NET Interactive notebook:
/// <code>
/// display(ReportCharts.ConfusionMatrix(classNames, labels, probabilities), "image/svg+xml");
/// display(HTML(ReportCharts.Attributions(model.Explain(["A dull, lifeless film."])[0])));
/// </code>
/// </example>
public static partial class ReportCharts
{
    /// <summary>The training loss by step (blue) and, when there is a validation set, the validation log-loss at each epoch's end (red).</summary>
    /// <param name="progress">The progress events of a fit (from <c>Progress</c> on the trainer's options).</param>
    /// <returns>An SVG document.</returns>
    public static string TrainingCurves(IEnumerable<TrainingProgress> progress)
    {
        ArgumentNullException.ThrowIfNull(progress);
        var events = progress.OrderBy(p => p.Step).ThenBy(p => p.IsEpochEnd).ToList();
        var steps = events.Where(p => !p.IsEpochEnd).Select(p => ((double)p.Step, p.Loss)).ToArray();
        var validation = events.Where(p => p.IsEpochEnd && p.ValidationLogLoss is not null).Select(p => ((double)p.Step, p.ValidationLogLoss!.Value)).ToArray();
        List<(string, string, (double, double)[])> series = [("training loss", "#2563eb", steps)];
        if (validation.Length > 0)
        {
            series.Add(("validation log-loss", "#dc2626", validation));
        }

        return Standalone(TrainingReportHtml.LineChart(series, "step", markers: false));
    }

    /// <summary>A confusion-matrix heatmap: rows are the true classes, columns the predicted ones, each cell shaded by its share of the row.</summary>
    /// <param name="classNames">Class names, in the probabilities' order.</param>
    /// <param name="labels">The rows' true classes, as indices into <paramref name="classNames"/>.</param>
    /// <param name="probabilities">Each row's class probabilities (the predicted class is the largest).</param>
    /// <returns>An SVG document.</returns>
    /// <exception cref="ArgumentException">The lists differ in length, a label is out of range, or a probability row has the wrong length.</exception>
    public static string ConfusionMatrix(IReadOnlyList<string> classNames, IReadOnlyList<int> labels, IReadOnlyList<float[]> probabilities)
    {
        ArgumentNullException.ThrowIfNull(classNames);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(probabilities);
        ReportMetrics.CheckRows(classNames.Count, labels, probabilities);
        var counts = new int[classNames.Count, classNames.Count];
        for (var i = 0; i < labels.Count; i++)
        {
            counts[labels[i], ReportMetrics.ArgMax(probabilities[i])]++;
        }

        return Standalone(TrainingReportHtml.Heatmap(counts, [.. classNames]));
    }

    /// <summary>
    /// The text's tokens, each shaded by its attribution: red pushed the score of the explained class up, blue down,
    /// the strongest at full shade; hovering a token shows its value.
    /// </summary>
    /// <param name="attribution">One text's attributions, from <see cref="TextClassificationTransformer.Explain"/>.</param>
    /// <returns>An HTML fragment (a <c>div</c> with inline styles).</returns>
    public static string Attributions(TokenAttribution attribution)
    {
        ArgumentNullException.ThrowIfNull(attribution);
        var html = new StringBuilder("<div style=\"font-family:ui-monospace,Menlo,Consolas,monospace;line-height:1.9;word-wrap:break-word\">");
        TrainingReportHtml.Tokens(html, attribution);
        return html.Append("</div>").ToString();
    }

    /// <summary>
    /// A heatmap of values from 0 (white) to the largest value (dark blue), with labelled rows and columns: an attention
    /// map (query tokens as rows, key tokens as columns, from <see cref="Modeling.TransformerModel.Attentions"/>), for example.
    /// </summary>
    /// <param name="values">The values (rows, columns); negative values are shaded as 0.</param>
    /// <param name="rowLabels">One label per row.</param>
    /// <param name="columnLabels">One label per column.</param>
    /// <param name="title">A heading above the map, or null.</param>
    /// <returns>An SVG document.</returns>
    /// <exception cref="ArgumentException">The label counts differ from the values' shape.</exception>
    public static string Heatmap(float[,] values, IReadOnlyList<string> rowLabels, IReadOnlyList<string> columnLabels, string? title = null)
    {
        ArgumentNullException.ThrowIfNull(values);
        ArgumentNullException.ThrowIfNull(rowLabels);
        ArgumentNullException.ThrowIfNull(columnLabels);
        var (rows, columns) = (values.GetLength(0), values.GetLength(1));
        if (rowLabels.Count != rows || columnLabels.Count != columns)
        {
            throw new ArgumentException($"The values are {rows} × {columns} but there are {rowLabels.Count} row and {columnLabels.Count} column labels; give one label per row and per column.", nameof(values));
        }

        const int Cell = 22;
        // About 7 pixels a character at font size 12: room for the longest (shortened) label on each side, and the title.
        var labelWidth = 8 + (7 * rowLabels.Select(l => Math.Min(l.Length, RowLabelLength)).DefaultIfEmpty(1).Max());
        var headerHeight = 8 + (7 * columnLabels.Select(l => Math.Min(l.Length, ColumnLabelLength)).DefaultIfEmpty(1).Max());
        var top = headerHeight + (title is null ? 0 : 22);
        var max = 0f;
        foreach (var v in values)
        {
            max = float.IsFinite(v) ? Math.Max(max, v) : max;
        }

        var svg = new StringBuilder();
        var (width, height) = (Math.Max(labelWidth + (columns * Cell) + 4, 16 + (7 * (title?.Length ?? 0))), top + (rows * Cell) + 4);
        svg.Append(string.Create(CultureInfo.InvariantCulture, $"<svg viewBox=\"0 0 {width} {height}\" role=\"img\" font-size=\"12\">"));
        if (title is not null)
        {
            svg.Append(string.Create(CultureInfo.InvariantCulture, $"<text x=\"{width / 2}\" y=\"15\" text-anchor=\"middle\" font-weight=\"bold\">{TrainingReportHtml.E(title)}</text>"));
        }

        for (var c = 0; c < columns; c++)
        {
            var x = labelWidth + (c * Cell) + (Cell / 2) + 4;
            svg.Append(string.Create(CultureInfo.InvariantCulture, $"<text transform=\"translate({x},{top - 6}) rotate(-90)\">{TrainingReportHtml.E(Short(columnLabels[c], ColumnLabelLength))}</text>"));
        }

        for (var r = 0; r < rows; r++)
        {
            var y = top + (r * Cell);
            svg.Append(string.Create(CultureInfo.InvariantCulture, $"<text x=\"{labelWidth - 6}\" y=\"{y + (Cell / 2) + 4}\" text-anchor=\"end\">{TrainingReportHtml.E(Short(rowLabels[r], RowLabelLength))}</text>"));
            for (var c = 0; c < columns; c++)
            {
                var v = values[r, c];
                var shade = max <= 0 || !float.IsFinite(v) ? 0 : Math.Clamp(v / max, 0, 1);
                svg.Append(string.Create(CultureInfo.InvariantCulture,
                    $"<rect x=\"{labelWidth + (c * Cell)}\" y=\"{y}\" width=\"{Cell - 1}\" height=\"{Cell - 1}\" fill=\"rgba(37,99,235,{0.03 + (0.97 * shade):0.###})\"><title>{TrainingReportHtml.E(rowLabels[r])} → {TrainingReportHtml.E(columnLabels[c])}: {v:0.000}</title></rect>"));
            }
        }

        return Standalone(svg.Append("</svg>").ToString());
    }

    /// <summary>
    /// The report's SVGs size themselves by its stylesheet; alone, an SVG image needs its namespace and a size (its
    /// view box's, so text stays legible) and a font.
    /// </summary>
    private static string Standalone(string svg)
    {
        var box = ViewBox().Match(svg);
        return "<svg xmlns=\"http://www.w3.org/2000/svg\" font-family=\"system-ui,-apple-system,'Segoe UI',Roboto,sans-serif\""
            + string.Create(CultureInfo.InvariantCulture, $" width=\"{box.Groups["w"].Value}\" height=\"{box.Groups["h"].Value}\"")
            + svg["<svg".Length..];
    }

    private const int RowLabelLength = 24;
    private const int ColumnLabelLength = 14;

    private static string Short(string label, int length) => label.Length <= length ? label : label[..(length - 1)] + "…";

    [GeneratedRegex("viewBox=\"0 0 (?<w>[0-9.]+) (?<h>[0-9.]+)\"")]
    private static partial Regex ViewBox();
}
