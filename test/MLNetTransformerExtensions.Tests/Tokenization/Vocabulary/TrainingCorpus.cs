using System.Globalization;
using System.Text;

namespace MLNetTransformerExtensions.Tests.Tokenization.Vocabulary;

/// <summary>A small generated corpus (about 20 KB in two files) and a temporary folder to train in.</summary>
internal sealed class TrainingCorpus : IDisposable
{
    private static readonly string[] Subjects = ["The tokenizer", "A small vocabulary", "The trainer", "Every model", "The reader"];
    private static readonly string[] Verbs = ["counts", "merges", "splits", "learns", "writes"];
    private static readonly string[] Objects = ["the words of the text", "frequent pairs", "the vocabulary file", "long sentences", "the special tokens"];

    public TrainingCorpus()
    {
        Folder = TestPaths.NewTempDirectory();
        Files = [Write("part-1.txt", Paragraphs(0, 40)), Write("part-2.txt", Paragraphs(40, 40))];
    }

    public string Folder { get; }

    public string[] Files { get; }

    /// <summary>Paragraphs of templated sentences with numbers, punctuation, an accented word, tabs and blank lines.</summary>
    public static string Paragraphs(int first, int count)
    {
        var text = new StringBuilder();
        for (var i = first; i < first + count; i++)
        {
            var subject = Subjects[i % Subjects.Length];
            var verb = Verbs[i * 3 % Verbs.Length];
            var obj = Objects[i * 7 % Objects.Length];
            text.Append(CultureInfo.InvariantCulture, $"{subject} {verb} {obj}, and then the tokenizer reads chapter {i}.\n");
            text.Append(CultureInfo.InvariantCulture, $"In 20{i % 30:00} the café was naïve about the vocabulary; \"why?\" asked the reader.\n");
            text.Append("The\ttokenizer  and the vocabulary were tested again (see the notes)!\n\n");
        }

        return text.ToString();
    }

    public string Write(string name, string text)
    {
        var path = Path.Combine(Folder, name);
        File.WriteAllText(path, text, new UTF8Encoding(false));
        return path;
    }

    public string Output(string name) => Path.Combine(Folder, name);

    public void Dispose()
    {
        if (Directory.Exists(Folder))
        {
            Directory.Delete(Folder, recursive: true);
        }
    }
}
