/*
 * Prints a Jenkinsfile's `pipeline { }` as JSON, parsed by Groovy (the
 * parser Jenkins uses) so that strings are what Jenkins hands to `sh`:
 * escapes and line continuations resolved. test/helpers/jenkins.ts runs
 * the tree. Usage: groovy JenkinsfileTree.groovy FILE; exit 1 on a parse error.
 */
import groovy.json.JsonOutput
import org.codehaus.groovy.ast.expr.*
import org.codehaus.groovy.ast.stmt.*
import org.codehaus.groovy.control.*

Object node(Expression e) {
    switch (e) {
        case ConstantExpression: return [k: 'const', v: e.value]
        case GStringExpression:
            return [k: 'gstring', strings: e.strings*.value, values: e.values.collect { node(it) }]
        case VariableExpression: return [k: 'var', name: e.name]
        case PropertyExpression: return [k: 'prop', object: node(e.objectExpression), name: e.propertyAsString]
        case MethodCallExpression:
            def args = []
            def named = [:]
            def closure = null
            def list = e.arguments instanceof TupleExpression ? e.arguments.expressions : [e.arguments]
            list.each { a ->
                if (a instanceof NamedArgumentListExpression || a instanceof MapExpression) {
                    a.mapEntryExpressions.each { named[it.keyExpression.text] = node(it.valueExpression) }
                } else if (a instanceof ClosureExpression) {
                    closure = block(a.code)
                } else {
                    args << node(a)
                }
            }
            return [k: 'call', name: e.methodAsString, object: e.implicitThis ? null : node(e.objectExpression),
                    args: args, named: named, closure: closure]
        case ClosureExpression: return [k: 'closure', body: block(e.code)]
        case MapExpression:
            return [k: 'map', entries: e.mapEntryExpressions.collectEntries { [(it.keyExpression.text): node(it.valueExpression)] }]
        case ListExpression: return [k: 'list', items: e.expressions.collect { node(it) }]
        case DeclarationExpression:
            return [k: 'binary', op: e.operation.text, left: node(e.leftExpression), right: node(e.rightExpression), declares: true]
        case BinaryExpression:
            return [k: 'binary', op: e.operation.text, left: node(e.leftExpression), right: node(e.rightExpression)]
        case NotExpression: return [k: 'not', expr: node(e.expression)]
        case BooleanExpression: return node(e.expression)
        default: return [k: 'other', text: e.text]
    }
}

List block(Statement s) {
    def stmts = s instanceof BlockStatement ? s.statements : [s]
    stmts.collect {
        if (it instanceof ExpressionStatement) return node(it.expression)
        // for (x in list) { ... }
        if (it instanceof ForStatement && it.variable != ForStatement.FOR_LOOP_DUMMY) {
            return [k: 'for', var: it.variable.name, collection: node(it.collectionExpression), body: block(it.loopBlock)]
        }
        [k: 'other', text: it.text]
    }
}

def cu = new CompilationUnit()
def source = cu.addSource(new File(args[0]))
try {
    cu.compile(Phases.CONVERSION)
} catch (CompilationFailedException e) {
    System.err.println(e.message)
    System.exit(1)
}
def pipeline = source.AST.statementBlock.statements.find {
    it instanceof ExpressionStatement && it.expression instanceof MethodCallExpression && it.expression.methodAsString == 'pipeline'
}
if (!pipeline) {
    System.err.println('no pipeline { } block')
    System.exit(1)
}
println(JsonOutput.toJson(node(pipeline.expression)))
