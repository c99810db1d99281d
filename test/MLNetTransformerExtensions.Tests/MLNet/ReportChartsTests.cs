using System.Text.RegularExpressions;
using System.Xml.Linq;
using MLNetTransformerExtensions.MLNet;
using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.Tests.MLNet;

/// <summary>The report's charts one at a time: standalone SVG images (namespace, size, well-formed) and an HTML fragment.</summary>
[TestClass]
public sealed class ReportChartsTests
{
    private static readonly XNamespace Svg = "http://www.w3.org/2000/svg";

    /// <summary>Parses the chart as XML (an image viewer is that strict) and checks it can stand alone.</summary>
    private static XElement Image(string svg)
    {
        var root = XElement.Parse(svg);
        Assert.AreEqual(Svg + "svg", root.Name, "an SVG image needs its namespace to render outside HTML");
        Assert.IsTrue(double.Parse(root.Attribute("width")!.Value, System.Globalization.CultureInfo.InvariantCulture) > 0, "a width");
        Assert.IsTrue(double.Parse(root.Attribute("height")!.Value, System.Globalization.CultureInfo.InvariantCulture) > 0, "a height");
        return root;
    }

    [TestMethod]
    public void TrainingCurvesDrawTheLossAndTheValidationLogLossWhenThereIsOne()
    {
        TrainingProgress Step(int step, double loss) => new(1, 2, step, 4, loss, 1e-4, 10, IsEpochEnd: false);
        List<TrainingProgress> progress = [Step(1, 0.7), Step(2, 0.6), new(1, 2, 2, 4, 0.65, 1e-4, 10, true, 0.7, 0.55), Step(3, 0.5), Step(4, 0.4), new(2, 2, 4, 4, 0.45, 0, 10, true, 0.8, 0.45)];
        var lines = Image(ReportCharts.TrainingCurves(progress)).Descendants(Svg + "polyline").ToList();
        Assert.AreEqual(2, lines.Count, "training loss and validation log-loss");
        Assert.AreEqual(4, lines[0].Attribute("points")!.Value.Split(' ').Length, "one point per step");
        Assert.AreEqual(2, lines[1].Attribute("points")!.Value.Split(' ').Length, "one point per epoch");
        Assert.AreEqual(1, Image(ReportCharts.TrainingCurves(progress.Where(p => !p.IsEpochEnd))).Descendants(Svg + "polyline").Count(), "no validation, no second line");
    }

    [TestMethod]
    public void TheConfusionMatrixCountsTrueClassesAgainstPredictedOnes()
    {
        // true 0,0,0,1 — predicted 0,1,1,1
        var svg = Image(ReportCharts.ConfusionMatrix(["neg", "pos"], [0, 0, 0, 1], [[0.9f, 0.1f], [0.2f, 0.8f], [0.4f, 0.6f], [0.3f, 0.7f]]));
        var cells = svg.Descendants(Svg + "rect").Select(r => r.Element(Svg + "title")!.Value).ToList();
        CollectionAssert.AreEqual(
            new[] { "true neg, predicted neg: 1 (33.3%)", "true neg, predicted pos: 2 (66.7%)", "true pos, predicted neg: 0 (0.0%)", "true pos, predicted pos: 1 (100.0%)" },
            cells.Select(c => Regex.Replace(c, @"\s+%", "%")).ToList());
        Assert.ThrowsExactly<ArgumentException>(() => ReportCharts.ConfusionMatrix(["neg", "pos"], [0, 2], [[1f, 0f], [0f, 1f]]));
        Assert.ThrowsExactly<ArgumentException>(() => ReportCharts.ConfusionMatrix(["neg", "pos"], [0], [[1f, 0f], [0f, 1f]]));
    }

    [TestMethod]
    public void TheHeatmapShadesEachCellByItsShareOfTheLargestValue()
    {
        var svg = Image(ReportCharts.Heatmap(new float[,] { { 1f, 0f, 0f }, { 0.5f, 0.5f, 0f } }, ["[CLS]", "good"], ["[CLS]", "good", "<pad>"], "layer 1 & head 2"));
        var rects = svg.Descendants(Svg + "rect").ToList();
        Assert.AreEqual(6, rects.Count, "one cell per value");
        Assert.AreEqual("rgba(37,99,235,1)", rects[0].Attribute("fill")!.Value, "the largest value is the darkest");
        Assert.AreEqual("rgba(37,99,235,0.03)", rects[2].Attribute("fill")!.Value, "zero is (almost) white");
        Assert.AreEqual("rgba(37,99,235,0.515)", rects[3].Attribute("fill")!.Value);
        StringAssert.Contains(rects[5].Element(Svg + "title")!.Value, "good → <pad>: 0.000");
        Assert.IsTrue(svg.Descendants(Svg + "text").Any(t => t.Value == "layer 1 & head 2"), "the title");
        Assert.ThrowsExactly<ArgumentException>(() => ReportCharts.Heatmap(new float[2, 3], ["a"], ["a", "b", "c"]));
    }

    [TestMethod]
    public void AttributionsShadeTokensRedTowardsTheClassAndBlueAway()
    {
        var why = new TokenAttribution(["[CLS]", "great", "##ly", "dull", "[SEP]"], [0, 0.8, 0.1, -0.4, 0], "positive", "positive",
            AttributionMethod.GradientTimesInput, 1, 2.0, 0.0, null);
        var html = XElement.Parse(ReportCharts.Attributions(why));
        var spans = html.Elements("span").ToList();
        Assert.AreEqual(5, spans.Count, "one span per token");
        CollectionAssert.AreEqual(new[] { "[CLS]", " great", "ly", " dull", " [SEP]" }, spans.Select(s => s.Value).ToList(), "WordPiece pieces joined");
        StringAssert.Contains(spans[1].Attribute("style")!.Value, "rgba(220,38,38,0.85)", "the strongest token at full shade, red");
        StringAssert.Contains(spans[3].Attribute("style")!.Value, "rgba(37,99,235,", "a token that pushed away is blue");
        StringAssert.Contains(spans[0].Attribute("style")!.Value, "color:#9aa5b1", "special tokens are grey without the report's stylesheet");
    }

    [TestMethod]
    public void ByteLevelPiecesJoinTheWordTheyContinue()
    {
        // GPT-2 marks word starts (Ġ): "review" split as "Ġr" + "eview" reads as one word, not " r eview".
        var why = new TokenAttribution(["The", "Ġr", "eview", "Ġwas", "Ġgreat", "<|endoftext|>", "Bad"], [0.1, 0.2, 0.3, 0, 0.5, 0, 0.1], "positive", "positive",
            AttributionMethod.GradientTimesInput, 1, 2.0, 0.0, null);
        var spans = XElement.Parse(ReportCharts.Attributions(why)).Elements("span").Select(s => s.Value).ToList();
        CollectionAssert.AreEqual(new[] { "The", " r", "eview", " was", " great", " <|endoftext|>", " Bad" }, spans);
    }
}
