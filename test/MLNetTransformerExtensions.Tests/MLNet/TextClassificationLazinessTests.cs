using Microsoft.ML;
using Microsoft.ML.Data;
using MLNetTransformerExtensions.MLNet;
using static MLNetTransformerExtensions.Tests.MLNet.TextClassificationTestData;

namespace MLNetTransformerExtensions.Tests.MLNet;

/// <summary>Transform is lazy and batched, streams its input, and copies pass-through columns correctly.</summary>
[TestClass]
public sealed class TextClassificationLazinessTests
{
    [TestMethod]
    [DataRow(50, 16)]
    [DataRow(48, 16)]
    [DataRow(5, 32)]
    [DataRow(7, 1)]
    public void ACursorMakesOneModelCallPerBatch(int rows, int batchSize)
    {
        var (ml, model, fake) = Fitted(batchSize);
        var scored = model.Transform(ml.Data.LoadFromEnumerable(TopicRows(rows)));
        Assert.IsEmpty(fake.BatchSizes, "Transform alone must not call the model");

        var scores = scored.GetColumn<float[]>("Score").ToList();

        Assert.HasCount(rows, scores);
        var expected = Enumerable.Range(0, (rows + batchSize - 1) / batchSize).Select(b => Math.Min(batchSize, rows - b * batchSize)).ToList();
        CollectionAssert.AreEqual(expected, fake.BatchSizes);
    }

    [TestMethod]
    public void ReadingOnlyInputColumnsNeverCallsTheModel()
    {
        var (ml, model, fake) = Fitted(batchSize: 4);
        var scored = model.Transform(ml.Data.LoadFromEnumerable(TopicRows(10)));

        var texts = scored.GetColumn<string>("Text").ToList();
        using (var cursor = scored.GetRowCursor([scored.Schema["Label"], scored.Schema["Features"]]))
        {
            while (cursor.MoveNext())
            {
            }
        }

        Assert.HasCount(10, texts);
        Assert.IsEmpty(fake.BatchSizes);
        Assert.AreEqual(10L, scored.GetRowCount());
    }

    [TestMethod]
    public void BatchedRowsKeepTheirOwnPassThroughValuesAndIds()
    {
        var (ml, model, _) = Fitted(batchSize: 4);
        var rows = TopicRows(10);
        var input = ml.Data.LoadFromEnumerable(rows);
        var scored = model.Transform(input);

        var features = scored.GetColumn<float[]>("Features").ToList();
        var texts = scored.GetColumn<string>("Text").ToList();
        using var cursor = scored.GetRowCursor(scored.Schema);
        var featureGetter = cursor.GetGetter<VBuffer<float>>(scored.Schema["Features"]);
        var textGetter = cursor.GetGetter<ReadOnlyMemory<char>>(scored.Schema["Text"]);
        var idGetter = cursor.GetIdGetter();
        var ids = new List<DataViewRowId>();
        var seen = new List<float[]>();
        var seenTexts = new List<string>();
        while (cursor.MoveNext())
        {
            Assert.AreEqual(seen.Count, cursor.Position);
            var buffer = default(VBuffer<float>);
            featureGetter(ref buffer);
            seen.Add(buffer.DenseValues().ToArray());
            var text = default(ReadOnlyMemory<char>);
            textGetter(ref text);
            seenTexts.Add(text.ToString());
            var id = default(DataViewRowId);
            idGetter(ref id);
            ids.Add(id);
        }

        for (var row = 0; row < rows.Count; row++)
        {
            CollectionAssert.AreEqual(rows[row].Features, seen[row], $"row {row}");
            CollectionAssert.AreEqual(rows[row].Features, features[row], $"row {row}");
            Assert.AreEqual(rows[row].Text, seenTexts[row]);
            Assert.AreEqual(rows[row].Text, texts[row]);
        }

        Assert.HasCount(10, ids.Distinct().ToList(), "each row keeps its own id");
    }

    [TestMethod]
    public void TransformStreamsWithoutReadingTheWholeInput()
    {
        var (ml, model, fake) = Fitted(batchSize: 8);
        var source = new CountingRows(TopicRows(1000));
        var scored = model.Transform(ml.Data.LoadFromEnumerable(source));

        using (var cursor = scored.GetRowCursor([scored.Schema["Score"]]))
        {
            for (var i = 0; i < 3; i++)
            {
                Assert.IsTrue(cursor.MoveNext());
            }
        }

        Assert.IsLessThanOrEqualTo(8 + 1, source.Read, $"read {source.Read} of 1000 rows for 3 scored ones");
        CollectionAssert.AreEqual(new[] { 8 }, fake.BatchSizes);
    }

    [TestMethod]
    public void AskingForTheWrongValueTypeNamesTheColumnAndItsType()
    {
        var (ml, model, _) = Fitted(batchSize: 4);
        var scored = model.Transform(ml.Data.LoadFromEnumerable(TopicRows(4)));
        using var cursor = scored.GetRowCursor([scored.Schema["Score"]]);

        var error = Assert.ThrowsExactly<InvalidOperationException>(() => cursor.GetGetter<float>(scored.Schema["Score"]));
        StringAssert.Contains(error.Message, "'Score'");
        StringAssert.Contains(error.Message, "Vector<Single, 3>");
        Assert.ThrowsExactly<InvalidOperationException>(() => cursor.GetGetter<ReadOnlyMemory<char>>(scored.Schema["Text"]));
    }

    [TestMethod]
    public void AClassifierThatAnswersTheWrongShapeIsReported()
    {
        var (ml, model, fake) = Fitted(batchSize: 4);
        var scored = model.Transform(ml.Data.LoadFromEnumerable(TopicRows(4)));

        fake.Override = rows => new float[rows - 1][];
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => scored.GetColumn<float[]>("Score").ToList());
        StringAssert.Contains(error.Message, "returned 3 probability rows for a batch of 4");

        fake.Override = rows => Enumerable.Range(0, rows).Select(_ => new float[2]).ToArray();
        error = Assert.ThrowsExactly<InvalidOperationException>(() => scored.GetColumn<float[]>("Score").ToList());
        StringAssert.Contains(error.Message, "returned 2 probabilities for row 0");
    }

    [TestMethod]
    public void MissingAndEmptyTextsReachTheClassifierAsEmptyStrings()
    {
        var ml = new MLContext(seed: 1);
        var trainer = new FakeNaiveBayesTrainer();
        var rows = TopicRows(9);
        rows[0].Text = "";
        rows[1].Text = null!;
        rows[2].Text = "   ";
        var model = MulticlassPipeline(ml, trainer).Fit(ml.Data.LoadFromEnumerable(rows));

        CollectionAssert.AreEqual(new[] { "", "", "   " }, trainer.Calls[0].Training.Texts.Take(3).ToArray());
        var fake = Fake(model);
        model.Transform(ml.Data.LoadFromEnumerable(rows)).GetColumn<float[]>("Score").ToList();
        CollectionAssert.AreEqual(new[] { "", "", "   " }, fake.ScoredTexts.Take(3).ToArray());
    }

    private static (MLContext Ml, TransformerChain<TextClassificationTransformer> Model, FakeNaiveBayesClassifier Fake) Fitted(int batchSize)
    {
        var ml = new MLContext(seed: 1);
        var model = MulticlassPipeline(ml, new FakeNaiveBayesTrainer(), new TextClassificationOptions { BatchSize = batchSize })
            .Fit(ml.Data.LoadFromEnumerable(TopicRows(30)));
        var fake = Fake(model);
        return (ml, model, fake);
    }

    /// <summary>An enumerable that counts how many rows were taken from it.</summary>
    private sealed class CountingRows(List<TopicRow> rows) : IEnumerable<TopicRow>
    {
        public int Read { get; private set; }

        public IEnumerator<TopicRow> GetEnumerator()
        {
            foreach (var row in rows)
            {
                Read++;
                yield return row;
            }
        }

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }
}
