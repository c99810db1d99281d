using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNetTransformerExtensions.Cli.Commands;

/// <summary>A TSV or CSV file with a header row, loaded through ML.NET's text loader with every column as text.</summary>
internal sealed class TabularData
{
    private TabularData(string path, char separator, IReadOnlyList<string> columns, IDataView view)
    {
        Path = path;
        Separator = separator;
        Columns = columns;
        View = view;
    }

    public string Path { get; }

    public char Separator { get; }

    /// <summary>Column names from the header row, in file order.</summary>
    public IReadOnlyList<string> Columns { get; }

    /// <summary>All columns as String; extra columns requested but absent from the file read as empty text.</summary>
    public IDataView View { get; }

    public string FileName => System.IO.Path.GetFileName(Path);

    /// <summary>Loads a file; <paramref name="extraColumns"/> that the file lacks are added as empty text (e.g. a label column at prediction time).</summary>
    public static TabularData Load(MLContext ml, string path, IEnumerable<string>? extraColumns = null)
    {
        if (!File.Exists(path))
        {
            throw new CliException($"The data file '{path}' does not exist.");
        }

        var separator = System.IO.Path.GetExtension(path).Equals(".csv", StringComparison.OrdinalIgnoreCase) ? ',' : '\t';
        string? header;
        using (var reader = new StreamReader(path))
        {
            header = reader.ReadLine();
        }

        if (string.IsNullOrWhiteSpace(header))
        {
            throw new CliException($"{System.IO.Path.GetFileName(path)}:1: the file is empty or has no header row; the first line must name the columns.");
        }

        var names = header.TrimStart('\uFEFF').Split(separator).Select(n => n.Trim().Trim('"')).ToList();
        var duplicate = names.GroupBy(n => n, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
        {
            throw new CliException($"{System.IO.Path.GetFileName(path)}:1: the header names the column '{duplicate.Key}' twice.");
        }

        var columns = names.Select((n, i) => new TextLoader.Column(n, DataKind.String, i)).ToList();
        foreach (var extra in extraColumns ?? [])
        {
            if (!names.Contains(extra, StringComparer.Ordinal))
            {
                // An index past the last field reads as empty text in every row.
                columns.Add(new TextLoader.Column(extra, DataKind.String, names.Count + columns.Count));
            }
        }

        var loader = ml.Data.CreateTextLoader(new TextLoader.Options
        {
            Columns = [.. columns],
            HasHeader = true,
            Separators = [separator],
            AllowQuoting = separator == ',',
            TrimWhitespace = false,
        });
        return new TabularData(path, separator, names, loader.Load(path));
    }

    /// <summary>Loads a labelled file, checking the columns given by --text-column, --label-column and --second-text-column.</summary>
    public static TabularData LoadLabelled(MLContext ml, string path, string textColumn, string labelColumn, string? secondTextColumn)
    {
        var data = Load(ml, path);
        data.Require(textColumn, "--text-column");
        data.Require(labelColumn, "--label-column");
        if (secondTextColumn is not null)
        {
            data.Require(secondTextColumn, "--second-text-column");
        }

        return data;
    }

    /// <summary>Fails with the available columns when a required column is missing.</summary>
    public void Require(string column, string option)
    {
        if (!Columns.Contains(column, StringComparer.Ordinal))
        {
            throw new CliException($"{FileName} has no column '{column}' (given by {option}); its columns are: {string.Join(", ", Columns)}.");
        }
    }

    /// <summary>The values of one column, in file order (data rows are numbered from line 2).</summary>
    public List<string> Read(MLContext ml, string column)
    {
        var values = new List<string>();
        using var cursor = View.GetRowCursor([View.Schema[column]]);
        var getter = cursor.GetGetter<ReadOnlyMemory<char>>(View.Schema[column]);
        ReadOnlyMemory<char> value = default;
        while (cursor.MoveNext())
        {
            getter(ref value);
            values.Add(value.ToString());
        }

        return values;
    }
}
