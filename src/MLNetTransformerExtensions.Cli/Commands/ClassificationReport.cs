using System.Globalization;
using System.Text.Json.Nodes;
using Microsoft.ML;
using Microsoft.ML.Data;
using Spectre.Console;

namespace MLNetTransformerExtensions.Cli.Commands;

/// <summary>Metrics of a multiclass model on labelled data, computed by ML.NET's evaluator, and how they are shown.</summary>
internal sealed record ClassificationReport(
    string Source,
    IReadOnlyList<string> Labels,
    long Count,
    double Accuracy,
    double MacroF1,
    double LogLoss,
    IReadOnlyList<double> Precision,
    IReadOnlyList<double> Recall,
    IReadOnlyList<IReadOnlyList<double>> Confusion)
{
    public static ClassificationReport Evaluate(MLContext ml, IDataView scored, string labelKeyColumn, IReadOnlyList<string> labels, string source)
    {
        var metrics = ml.MulticlassClassification.Evaluate(scored, labelColumnName: labelKeyColumn, scoreColumnName: "Score", predictedLabelColumnName: "PredictedLabelKey");
        var precision = metrics.ConfusionMatrix.PerClassPrecision;
        var recall = metrics.ConfusionMatrix.PerClassRecall;
        var f1 = precision.Zip(recall, (p, r) => p + r == 0 ? 0 : 2 * p * r / (p + r)).ToList();
        var confusion = metrics.ConfusionMatrix.Counts.Select(row => (IReadOnlyList<double>)[.. row]).ToList();
        return new ClassificationReport(source, labels, (long)confusion.Sum(r => r.Sum()), metrics.MicroAccuracy, f1.Average(), metrics.LogLoss,
            precision, recall, confusion);
    }

    public JsonObject ToJson() => new()
    {
        ["accuracy"] = Accuracy,
        ["macro_f1"] = MacroF1,
        ["log_loss"] = LogLoss,
        ["count"] = Count,
        ["labels"] = new JsonArray([.. Labels.Select(l => JsonValue.Create(l))]),
        ["per_class"] = new JsonObject(Labels.Select((l, i) => new KeyValuePair<string, JsonNode?>(l, new JsonObject
        {
            ["precision"] = Precision[i],
            ["recall"] = Recall[i],
        }))),
        ["confusion_matrix"] = new JsonArray([.. Confusion.Select(r => (JsonNode)new JsonArray([.. r.Select(v => JsonValue.Create(v))]))]),
    };

    public void Render(IAnsiConsole console, string title)
    {
        string F(double v) => v.ToString("0.0000", CultureInfo.InvariantCulture);
        var summary = new Table().Border(TableBorder.Rounded).Title(Markup.Escape(title)).AddColumn("Metric").AddColumn("Value");
        summary.AddRow("Rows", Count.ToString(CultureInfo.InvariantCulture));
        summary.AddRow("Accuracy", F(Accuracy));
        summary.AddRow("Macro-F1", F(MacroF1));
        summary.AddRow("Log-loss", F(LogLoss));
        console.Write(summary);

        var perClass = new Table().Border(TableBorder.Rounded).AddColumn("Class").AddColumn("Precision").AddColumn("Recall");
        for (var i = 0; i < Labels.Count; i++)
        {
            perClass.AddRow(Markup.Escape(Labels[i]), F(Precision[i]), F(Recall[i]));
        }

        console.Write(perClass);

        var matrix = new Table().Border(TableBorder.Rounded).Title("Confusion matrix (rows: truth, columns: predicted)").AddColumn(string.Empty);
        foreach (var label in Labels)
        {
            matrix.AddColumn(Markup.Escape(label));
        }

        for (var i = 0; i < Labels.Count; i++)
        {
            matrix.AddRow([Markup.Escape(Labels[i]), .. Confusion[i].Select(v => v.ToString(CultureInfo.InvariantCulture))]);
        }

        console.Write(matrix);
    }
}
